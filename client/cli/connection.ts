// Where the CLI connects and with which token: flags, then VEIL_* variables, then the local defaults.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createVeilClient, type VeilClient, type VeilProtocol, type VeilTlsOptions } from "../index.js";
import { UsageError } from "./io.js";
import { activeProfile, type Profile } from "./profiles.js";

/** Flags every client command accepts. */
export const CONNECTION_OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  protocol: { type: "string" },
  profile: { type: "string" },
  "ca-file": { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
} as const;

export const CONNECTION_HELP = `Connection:
  --url URL          server address (default $VEIL_URL, the profile's, or http://127.0.0.1:8080)
  --token TOKEN      bearer token (default $VEIL_TOKEN, the profile's token file, else
                     <data dir>/admin.token)
  --protocol P       grpc (default), connect or grpc-web
  --profile NAME     a profile saved by 'veil login' (default $VEIL_PROFILE or the current one)
  --ca-file FILE     CA (PEM) to trust for an https:// URL, besides the system's
                     (default $VEIL_CA_FILE, or the profile's)
  --cert FILE        client certificate (PEM) for a server that requires one (default $VEIL_CERT)
  --key FILE         its private key (PEM) (default $VEIL_KEY)`;

/** The token to use: --token, $VEIL_TOKEN, the profile's token file, or the local operator token file. */
function resolveToken(flag: string | undefined, profile: Profile | undefined): string {
  if (flag) return flag;
  if (process.env.VEIL_TOKEN) return process.env.VEIL_TOKEN;
  if (profile?.tokenFile !== undefined) {
    if (!existsSync(profile.tokenFile)) throw new UsageError(`profile: token file ${profile.tokenFile} is missing (run 'veil login' again)`);
    return readFileSync(profile.tokenFile, "utf8").trim();
  }
  const file = join(process.env.VEIL_DATA_DIR ?? "./.veil", "admin.token");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  throw new UsageError(`no token: pass --token, set VEIL_TOKEN, or run next to a data dir with ${file}`);
}

/** A server address must be an http(s) URL: anything else is a usage error (exit 2) naming where it came from. */
export function checkUrl(text: string, from: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${from}: not a URL (expected http://HOST:PORT or https://HOST:PORT)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`${from}: must be an http:// or https:// URL, not ${url.protocol}`);
  return text;
}

/** The parsed connection flags of a command. */
export interface ConnectionValues {
  url?: string | undefined;
  token?: string | undefined;
  protocol?: string | undefined;
  "ca-file"?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  profile?: string | undefined;
}

/** Reads a PEM file a flag names; a missing one is a usage error naming the flag. */
function readPem(flag: string, env: string, given: string | undefined): Buffer | undefined {
  const path = given ?? process.env[env];
  if (path === undefined || path === "") return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`${flag} (or ${env}): cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

/** The TLS options for the flags: a CA to trust, and a client certificate with its key (both or neither). */
function resolveTls(values: ConnectionValues, profile: Profile | undefined): VeilTlsOptions | undefined {
  const ca = readPem("--ca-file", "VEIL_CA_FILE", values["ca-file"] ?? (process.env.VEIL_CA_FILE ? undefined : profile?.caFile));
  const cert = readPem("--cert", "VEIL_CERT", values.cert);
  const key = readPem("--key", "VEIL_KEY", values.key);
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("--cert and --key (or VEIL_CERT and VEIL_KEY): give both or neither");
  if (ca === undefined && cert === undefined) return undefined;
  return { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined && key !== undefined ? { cert, key } : {}) };
}

/** Builds the client for a command's parsed connection flags. */
export async function connect(values: ConnectionValues): Promise<VeilClient> {
  const protocol = (values.protocol ?? "grpc") as VeilProtocol;
  if (!["grpc", "connect", "grpc-web"].includes(protocol)) throw new UsageError("--protocol: must be grpc, connect or grpc-web");
  const profile = activeProfile(values.profile);
  const fromEnv = process.env.VEIL_URL || undefined;
  const [url, from] = values.url !== undefined ? [values.url, "--url"] : fromEnv !== undefined ? [fromEnv, "VEIL_URL"] : [profile?.url ?? "http://127.0.0.1:8080", "profile url"];
  const baseUrl = checkUrl(url, from);
  const tls = resolveTls(values, profile);
  return createVeilClient({ baseUrl, token: resolveToken(values.token, profile), protocol, ...(tls !== undefined ? { tls } : {}) });
}
