// One lookup request: guarded address, verified TLS, timeout, size cap, no redirects, JSON pointer; failures say only their kind.
import * as http from "node:http";
import * as https from "node:https";
import { rootCertificates } from "node:tls";
import { checkLiteral, guardedLookup, PrivateAddressError } from "./address-guard.js";
import { LOOKUP_LIMITS, type LookupSpec, pointerTokens, selectPointer } from "./lookup-source.js";

/** How the server dials lookups. */
export interface LookupFetchOptions {
  /** `--allow-private-lookups`: loopback and private addresses may be dialled. */
  allowPrivate: boolean;
  /** `--lookup-ca-file`'s PEM, trusted besides the system roots. */
  extraCa?: string;
}

/**
 * Why a lookup failed, in words safe to send: the kind of failure only, never the
 * response body, its headers or the request's headers.
 */
export class LookupFailure extends Error {
  override readonly name = "LookupFailure";
}

/** Fetches `spec` with `headers` (expressions already rendered) and answers the selected value as text. */
export async function fetchLookup(spec: LookupSpec, headers: Record<string, string>, options: LookupFetchOptions): Promise<string> {
  const url = new URL(spec.url);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const refused = checkLiteral(host, options.allowPrivate);
  if (refused !== undefined) throw new LookupFailure(`refused before any request: ${refused} (the server needs --allow-private-lookups)`);
  const body = await request(url, spec, headers, options);
  return select(body, spec.jsonPointer);
}

function request(url: URL, spec: LookupSpec, headers: Record<string, string>, options: LookupFetchOptions): Promise<string> {
  const timeoutMs = spec.timeoutMs || LOOKUP_LIMITS.defaultTimeoutMs;
  return new Promise<string>((resolve, reject) => {
    const settle = (error: LookupFailure | undefined, text?: string) => {
      clearTimeout(timer);
      if (error !== undefined) reject(error);
      else resolve(text!);
    };
    const common = { method: spec.method, headers, agent: false as const, lookup: guardedLookup(options.allowPrivate) };
    const req =
      url.protocol === "https:"
        ? https.request(url, { ...common, ...(options.extraCa !== undefined ? { ca: [...rootCertificates, options.extraCa] } : {}) })
        : http.request(url, common);
    const timer = setTimeout(() => {
      req.destroy();
      settle(new LookupFailure(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    req.on("error", (error) => settle(describeError(error)));
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        res.resume();
        req.destroy();
        settle(new LookupFailure(status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > LOOKUP_LIMITS.maxResponseBytes) {
          req.destroy();
          settle(new LookupFailure(`response is larger than ${LOOKUP_LIMITS.maxResponseBytes / 1024} KiB`));
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => settle(undefined, Buffer.concat(chunks).toString("utf8")));
      res.on("error", (error) => settle(describeError(error)));
    });
    req.end();
  });
}

/** A network or TLS error as its kind: the code, never the message (which can carry a host's reply). */
function describeError(error: Error): LookupFailure {
  if (error instanceof PrivateAddressError) return new LookupFailure(`refused before any request: ${error.message} (the server needs --allow-private-lookups)`);
  const code = (error as NodeJS.ErrnoException).code ?? "unknown";
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME/.test(code)) return new LookupFailure(`TLS verification failed (${code})`);
  return new LookupFailure(`network error (${code})`);
}

/** The value a pointer selects: a string as is, a number as its JSON text; anything else fails. */
function select(body: string, pointer: string): string {
  if (pointer === "") return body;
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch {
    throw new LookupFailure("response is not JSON");
  }
  const picked = selectPointer(document, pointerTokens(pointer) ?? []);
  if (!picked.found) throw new LookupFailure(`json_pointer ${pointer} not found`);
  if (typeof picked.value === "string") return picked.value;
  if (typeof picked.value === "number") return String(picked.value);
  throw new LookupFailure(`json_pointer ${pointer} is not a string or number`);
}
