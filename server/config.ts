// Server configuration from flags and VEIL_* variables, validated once at start.
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { SERVER_ID_PATTERN } from "./server-id.js";

/** Everything `veil serve` can be told. */
export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  masterKeyFile?: string;
  /** "required" (also given as "auto"): commands only in bubblewrap; "off": never. */
  sandbox: "required" | "off";
  /** bwrap binary to use; undefined: searched on PATH. */
  bwrap?: string;
  /** Where conversations' workspaces live (never inside the data dir by default). */
  workDir: string;
  commandTimeoutMs: number;
  outputLimitBytes: number;
  idleTimeoutMs: number;
  maxConversationsPerTenant: number;
  reencryptRate: number;
  /** Per conversation: processes (and threads) at once. */
  maxProcesses: number;
  /** Per conversation: memory of its processes, tmpfs pages included. */
  memoryLimitBytes: number;
  /** Per conversation: the workspace, and separately /tmp and /dev/shm in the sandbox. */
  diskLimitBytes: number;
  /** Per conversation: the largest file a command may write (RLIMIT_FSIZE). */
  fileSizeLimitBytes: number;
  /** Extra CA bundle the egress gateway trusts for upstreams, besides the system's. */
  egressCaFile?: string;
  /** Let the egress gateway reach loopback and private addresses (off by default). */
  egressAllowPrivate: boolean;
  /** Extra CA bundle lookup secrets' HTTPS servers are verified with, besides the system's. */
  lookupCaFile?: string;
  /** Let lookup secrets reach loopback and private addresses (off by default). */
  allowPrivateLookups: boolean;
  /** Where the built web console lives; undefined: the package's dist/console. */
  consoleDir?: string;
  /** The port's certificate chain and key (PEM files): both set, the port serves TLS only. */
  tlsCert?: string;
  tlsKey?: string;
  /** CA bundle client certificates must chain to: set, mutual TLS. */
  tlsClientCa?: string;
  /** Allow a non-loopback --host without TLS (bearer tokens then cross the network in the clear). */
  insecureListen: boolean;
  /** Lines below this level are not written. */
  logLevel: "debug" | "info" | "warn" | "error";
  /** Browser origins (scheme://host[:port]) allowed to call cross-origin, or ["*"]; the server's own origin always is. */
  corsOrigins: string[];
  /** On SIGTERM: how long /healthz answers 503 while the port still serves, before it closes. */
  drainMs: number;
  /** This server's id among the servers sharing a store (conversation ids name it); undefined: random at start. */
  serverId?: string;
  /** The URL other servers reach this one at (forwarded conversation calls); undefined: derived from --host and the port. */
  advertiseUrl?: string;
  /** Where state lives: an embedded LevelDB in the data dir, or an etcd cluster several servers share. */
  store: "leveldb" | "etcd";
  /** Set exactly when store is "etcd". */
  etcd?: EtcdConfig;
}

/** How to reach etcd (`--store etcd`); the password itself is read at start, never from a flag. */
export interface EtcdConfig {
  endpoints: string[];
  prefix: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
  /** Where the password comes from when username is set: VEIL_ETCD_PASSWORD, or this file. */
  passwordFile?: string;
  maxTxnOps: number;
  maxRequestBytes: number;
}

/** A configuration mistake; the CLI prints it on one line and exits 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const integer = (min: number, max: number) => z.coerce.number().int(`must be a whole number`).min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

const schema = z.object({
  host: z.string().min(1, "must not be empty"),
  port: integer(0, 65535),
  dataDir: z.string().min(1, "must not be empty"),
  masterKeyFile: z.string().min(1, "must not be empty").optional(),
  sandbox: z.enum(["auto", "required", "off"], { error: "must be auto, required or off" }).transform((mode) => (mode === "auto" ? "required" : mode)),
  bwrap: z.string().min(1, "must not be empty").optional(),
  workDir: z.string().min(1, "must not be empty").optional(),
  commandTimeoutMs: integer(100, 24 * 3600 * 1000),
  outputLimitBytes: integer(1024, 1024 * 1024 * 1024),
  idleTimeoutMs: integer(1000, 24 * 3600 * 1000),
  maxConversationsPerTenant: integer(1, 10_000),
  reencryptRate: integer(1, 10_000_000),
  maxProcesses: integer(8, 1_000_000),
  memoryLimitBytes: integer(16 * 1024 * 1024, 2 ** 50),
  diskLimitBytes: integer(1024 * 1024, 2 ** 50),
  fileSizeLimitBytes: integer(64 * 1024, 2 ** 50),
  egressCaFile: z.string().min(1, "must not be empty").optional(),
  egressAllowPrivate: z.enum(["true", "false"], { error: "must be true or false" }).transform((v) => v === "true"),
  lookupCaFile: z.string().min(1, "must not be empty").optional(),
  allowPrivateLookups: z.enum(["true", "false"], { error: "must be true or false" }).transform((v) => v === "true"),
  consoleDir: z.string().min(1, "must not be empty").optional(),
  tlsCert: z.string().min(1, "must not be empty").optional(),
  tlsKey: z.string().min(1, "must not be empty").optional(),
  tlsClientCa: z.string().min(1, "must not be empty").optional(),
  insecureListen: z.enum(["true", "false"], { error: "must be true or false" }).transform((v) => v === "true"),
  logLevel: z.enum(["debug", "info", "warn", "error"], { error: "must be debug, info, warn or error" }),
  corsOrigins: z
    .string()
    .optional()
    .transform((list) => (list ?? "").split(",").map((o) => o.trim()).filter((o) => o !== ""))
    .pipe(z.array(z.string().refine((o) => o === "*" || isOrigin(o), "must be * or an origin such as https://app.example.com[:port] (no path, no trailing slash)"))),
  drainMs: integer(0, 10 * 60 * 1000),
  serverId: z.string().regex(SERVER_ID_PATTERN, "must be 1-32 lowercase letters, digits and inner hyphens").optional(),
  advertiseUrl: z
    .string()
    .refine(isBaseUrl, "must be http:// or https:// with a host and port and no path, such as https://veil-1.internal:8443")
    .transform((url) => new URL(url).origin)
    .optional(),
  store: z.enum(["leveldb", "etcd"], { error: "must be leveldb or etcd" }),
  etcdEndpoints: z
    .string()
    .optional()
    .transform((list) => (list ?? "").split(",").map((o) => o.trim()).filter((o) => o !== ""))
    .pipe(z.array(z.string().refine(isEtcdUrl, "must be a comma-separated list of http:// or https:// URLs (host:port, no path)"))),
  etcdPrefix: z.string().min(1, "must not be empty").max(256, "must be at most 256 characters"),
  etcdCaFile: z.string().min(1, "must not be empty").optional(),
  etcdCertFile: z.string().min(1, "must not be empty").optional(),
  etcdKeyFile: z.string().min(1, "must not be empty").optional(),
  etcdUsername: z.string().min(1, "must not be empty").optional(),
  etcdPasswordFile: z.string().min(1, "must not be empty").optional(),
  etcdMaxTxnOps: integer(8, 1_000_000),
  etcdMaxRequestBytes: integer(64 * 1024, 2 ** 31),
});

/** An etcd client URL: http(s)://host:port and nothing more. */
function isEtcdUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && url.port !== "" && (url.pathname === "/" || url.pathname === "") && url.search === "";
  } catch {
    return false;
  }
}

/** A server base URL: http(s)://host[:port], nothing after it. */
function isBaseUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === text.replace(/\/$/, "");
  } catch {
    return false;
  }
}

/** scheme://host[:port] exactly as browsers send it in `Origin`. */
function isOrigin(text: string): boolean {
  try {
    return new URL(text).origin === text;
  } catch {
    return false;
  }
}

/** Flags with their environment variables and defaults. */
const OPTIONS = {
  host: { flag: "host", env: "VEIL_HOST", default: "127.0.0.1" },
  port: { flag: "port", env: "VEIL_PORT", default: "8080" },
  dataDir: { flag: "data-dir", env: "VEIL_DATA_DIR", default: "./.veil" },
  masterKeyFile: { flag: "master-key-file", env: "VEIL_MASTER_KEY_FILE", default: undefined },
  sandbox: { flag: "sandbox", env: "VEIL_SANDBOX", default: "required" },
  bwrap: { flag: "bwrap", env: "VEIL_BWRAP", default: undefined },
  workDir: { flag: "work-dir", env: "VEIL_WORK_DIR", default: undefined },
  commandTimeoutMs: { flag: "command-timeout-ms", env: "VEIL_COMMAND_TIMEOUT_MS", default: "120000" },
  outputLimitBytes: { flag: "output-limit-bytes", env: "VEIL_OUTPUT_LIMIT_BYTES", default: String(16 * 1024 * 1024) },
  idleTimeoutMs: { flag: "idle-timeout-ms", env: "VEIL_IDLE_TIMEOUT_MS", default: String(15 * 60 * 1000) },
  maxConversationsPerTenant: { flag: "max-conversations", env: "VEIL_MAX_CONVERSATIONS", default: "32" },
  reencryptRate: { flag: "reencrypt-rate", env: "VEIL_REENCRYPT_RATE", default: "5000" },
  maxProcesses: { flag: "max-processes", env: "VEIL_MAX_PROCESSES", default: "256" },
  memoryLimitBytes: { flag: "memory-limit-bytes", env: "VEIL_MEMORY_LIMIT_BYTES", default: String(1024 * 1024 * 1024) },
  diskLimitBytes: { flag: "disk-limit-bytes", env: "VEIL_DISK_LIMIT_BYTES", default: String(1024 * 1024 * 1024) },
  fileSizeLimitBytes: { flag: "file-size-limit-bytes", env: "VEIL_FILE_SIZE_LIMIT_BYTES", default: String(256 * 1024 * 1024) },
  egressCaFile: { flag: "egress-ca-file", env: "VEIL_EGRESS_CA_FILE", default: undefined },
  // A switch: `--egress-allow-private` alone means true; the variable takes true/false.
  egressAllowPrivate: { flag: "egress-allow-private", env: "VEIL_EGRESS_ALLOW_PRIVATE", default: "false", boolean: true },
  lookupCaFile: { flag: "lookup-ca-file", env: "VEIL_LOOKUP_CA_FILE", default: undefined },
  allowPrivateLookups: { flag: "allow-private-lookups", env: "VEIL_ALLOW_PRIVATE_LOOKUPS", default: "false", boolean: true },
  consoleDir: { flag: "console-dir", env: "VEIL_CONSOLE_DIR", default: undefined },
  tlsCert: { flag: "tls-cert", env: "VEIL_TLS_CERT", default: undefined },
  tlsKey: { flag: "tls-key", env: "VEIL_TLS_KEY", default: undefined },
  tlsClientCa: { flag: "tls-client-ca", env: "VEIL_TLS_CLIENT_CA", default: undefined },
  insecureListen: { flag: "insecure-listen", env: "VEIL_INSECURE_LISTEN", default: "false", boolean: true },
  logLevel: { flag: "log-level", env: "VEIL_LOG_LEVEL", default: "info" },
  // Repeatable; the variable takes a comma-separated list.
  corsOrigins: { flag: "cors-origin", env: "VEIL_CORS_ORIGINS", default: undefined, multiple: true },
  drainMs: { flag: "drain-ms", env: "VEIL_DRAIN_MS", default: "5000" },
  serverId: { flag: "server-id", env: "VEIL_SERVER_ID", default: undefined },
  advertiseUrl: { flag: "advertise-url", env: "VEIL_ADVERTISE_URL", default: undefined },
  store: { flag: "store", env: "VEIL_STORE", default: "leveldb" },
  etcdEndpoints: { flag: "etcd-endpoints", env: "VEIL_ETCD_ENDPOINTS", default: undefined },
  etcdPrefix: { flag: "etcd-prefix", env: "VEIL_ETCD_PREFIX", default: "veil/" },
  etcdCaFile: { flag: "etcd-ca-file", env: "VEIL_ETCD_CA_FILE", default: undefined },
  etcdCertFile: { flag: "etcd-cert-file", env: "VEIL_ETCD_CERT_FILE", default: undefined },
  etcdKeyFile: { flag: "etcd-key-file", env: "VEIL_ETCD_KEY_FILE", default: undefined },
  etcdUsername: { flag: "etcd-username", env: "VEIL_ETCD_USERNAME", default: undefined },
  // The password is never a flag value (it would show in ps): VEIL_ETCD_PASSWORD or this file.
  etcdPasswordFile: { flag: "etcd-password-file", env: "VEIL_ETCD_PASSWORD_FILE", default: undefined },
  etcdMaxTxnOps: { flag: "etcd-max-txn-ops", env: "VEIL_ETCD_MAX_TXN_OPS", default: "128" },
  etcdMaxRequestBytes: { flag: "etcd-max-request-bytes", env: "VEIL_ETCD_MAX_REQUEST_BYTES", default: String(1.5 * 1024 * 1024) },
} as const;

/** The flag table for `veil serve --help`. */
export const SERVE_FLAGS = Object.values(OPTIONS).map((o) => ({ flag: `--${o.flag}`, env: o.env, default: o.default, isSwitch: "boolean" in o }));

/** Parses `veil serve` arguments over the environment; flags win over variables. */
export function parseServerConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.values(OPTIONS).map((o) => [o.flag, { type: "boolean" in o ? ("boolean" as const) : ("string" as const), multiple: "multiple" in o }])),
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ConfigError((error as Error).message.split("\n")[0] ?? "bad arguments");
  }
  const raw = Object.fromEntries(
    Object.entries(OPTIONS).map(([key, o]) => {
      const flag = values[o.flag];
      const given = typeof flag === "boolean" ? String(flag) : Array.isArray(flag) ? (flag.length > 0 ? flag.join(",") : undefined) : flag;
      return [key, given ?? env[o.env] ?? o.default];
    }),
  );
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const option = OPTIONS[issue.path[0] as keyof typeof OPTIONS];
    throw new ConfigError(`--${option.flag} (or ${option.env}): ${issue.message}`);
  }
  const { masterKeyFile, bwrap, workDir, egressCaFile, lookupCaFile, consoleDir, tlsCert, tlsKey, tlsClientCa, serverId, advertiseUrl, ...withEtcd } = result.data;
  const { etcdEndpoints, etcdPrefix, etcdCaFile, etcdCertFile, etcdKeyFile, etcdUsername, etcdPasswordFile, etcdMaxTxnOps, etcdMaxRequestBytes, ...rest } = withEtcd;
  checkTls(rest.host, rest.insecureListen, tlsCert, tlsKey, tlsClientCa);
  const given = (key: keyof typeof OPTIONS) => values[OPTIONS[key].flag] !== undefined || (env[OPTIONS[key].env] ?? "") !== "";
  const etcd = etcdConfig(rest.store, given, env, { etcdEndpoints, etcdPrefix, etcdCaFile, etcdCertFile, etcdKeyFile, etcdUsername, etcdPasswordFile, etcdMaxTxnOps, etcdMaxRequestBytes });
  // Absolute from here on: workspaces and sandbox binds need absolute paths.
  const dataDir = resolve(rest.dataDir);
  return {
    ...rest,
    dataDir,
    workDir: workDir !== undefined ? resolve(workDir) : defaultWorkDir(dataDir),
    ...(masterKeyFile !== undefined ? { masterKeyFile: resolve(masterKeyFile) } : {}),
    ...(bwrap !== undefined ? { bwrap: resolve(bwrap) } : {}),
    ...(egressCaFile !== undefined ? { egressCaFile: resolve(egressCaFile) } : {}),
    ...(lookupCaFile !== undefined ? { lookupCaFile: resolve(lookupCaFile) } : {}),
    ...(consoleDir !== undefined ? { consoleDir: resolve(consoleDir) } : {}),
    ...(tlsCert !== undefined ? { tlsCert: resolve(tlsCert) } : {}),
    ...(tlsKey !== undefined ? { tlsKey: resolve(tlsKey) } : {}),
    ...(tlsClientCa !== undefined ? { tlsClientCa: resolve(tlsClientCa) } : {}),
    ...(serverId !== undefined ? { serverId } : {}),
    ...(advertiseUrl !== undefined ? { advertiseUrl } : {}),
    ...(etcd !== undefined ? { etcd } : {}),
  };
}

type EtcdFileKey = "etcdCaFile" | "etcdCertFile" | "etcdKeyFile" | "etcdUsername" | "etcdPasswordFile";

/** The etcd flags belong to --store etcd, which needs endpoints; TLS and auth flags go in pairs. */
function etcdConfig(
  store: "leveldb" | "etcd",
  given: (key: keyof typeof OPTIONS) => boolean,
  env: NodeJS.ProcessEnv,
  v: { etcdEndpoints: string[]; etcdPrefix: string; etcdMaxTxnOps: number; etcdMaxRequestBytes: number } & { [K in EtcdFileKey]?: string | undefined },
): EtcdConfig | undefined {
  const etcdKeys = (Object.keys(OPTIONS) as (keyof typeof OPTIONS)[]).filter((k) => k.startsWith("etcd"));
  if (store !== "etcd") {
    const stray = etcdKeys.find(given);
    if (stray !== undefined) throw new ConfigError(`--${OPTIONS[stray].flag} (or ${OPTIONS[stray].env}): only with --store etcd`);
    if ((env.VEIL_ETCD_PASSWORD ?? "") !== "") throw new ConfigError("VEIL_ETCD_PASSWORD: only with --store etcd");
    return undefined;
  }
  if (v.etcdEndpoints.length === 0) throw new ConfigError("--store etcd needs --etcd-endpoints URL[,URL...] (or VEIL_ETCD_ENDPOINTS), e.g. http://127.0.0.1:2379");
  if ((v.etcdCertFile === undefined) !== (v.etcdKeyFile === undefined)) throw new ConfigError("--etcd-cert-file and --etcd-key-file (or VEIL_ETCD_CERT_FILE and VEIL_ETCD_KEY_FILE): give both or neither");
  const password = (env.VEIL_ETCD_PASSWORD ?? "") !== "";
  if (password && v.etcdPasswordFile !== undefined) throw new ConfigError("VEIL_ETCD_PASSWORD and --etcd-password-file: give one, not both");
  if (v.etcdUsername === undefined && (password || v.etcdPasswordFile !== undefined)) throw new ConfigError("an etcd password (VEIL_ETCD_PASSWORD or --etcd-password-file) needs --etcd-username");
  if (v.etcdUsername !== undefined && !password && v.etcdPasswordFile === undefined) throw new ConfigError("--etcd-username needs its password in VEIL_ETCD_PASSWORD or --etcd-password-file");
  return {
    endpoints: v.etcdEndpoints,
    prefix: v.etcdPrefix,
    maxTxnOps: v.etcdMaxTxnOps,
    maxRequestBytes: v.etcdMaxRequestBytes,
    ...(v.etcdCaFile !== undefined ? { caFile: resolve(v.etcdCaFile) } : {}),
    ...(v.etcdCertFile !== undefined ? { certFile: resolve(v.etcdCertFile) } : {}),
    ...(v.etcdKeyFile !== undefined ? { keyFile: resolve(v.etcdKeyFile) } : {}),
    ...(v.etcdUsername !== undefined ? { username: v.etcdUsername } : {}),
    ...(v.etcdPasswordFile !== undefined ? { passwordFile: resolve(v.etcdPasswordFile) } : {}),
  };
}

/** Loopback: 127.0.0.0/8, ::1 and localhost; only there may bearer tokens travel in the clear without saying so. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/** The TLS flags go together, and a non-loopback host needs TLS or an explicit --insecure-listen. */
function checkTls(host: string, insecure: boolean, cert?: string, key?: string, clientCa?: string): void {
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError("--tls-cert and --tls-key (or VEIL_TLS_CERT and VEIL_TLS_KEY): give both or neither");
  if (clientCa !== undefined && cert === undefined) throw new ConfigError("--tls-client-ca (or VEIL_TLS_CLIENT_CA): needs --tls-cert and --tls-key");
  if (cert === undefined && !insecure && !isLoopbackHost(host)) {
    throw new ConfigError(
      `--host ${host} is not loopback and TLS is off: bearer tokens would cross the network in the clear. Give --tls-cert and --tls-key, or --insecure-listen to accept that`,
    );
  }
}

/**
 * The default work dir: outside the data dir (a command filling its workspace must not fill the
 * vault's disk), under the system temp dir, one per data dir so two servers never mix by accident.
 */
function defaultWorkDir(dataDir: string): string {
  return join(tmpdir(), `veil-work-${createHash("sha256").update(dataDir).digest("hex").slice(0, 12)}`);
}
