// Request ids: every request on the port gets one (the caller's `x-request-id` if sane, else a new one), echoed in the response.
import { randomFillSync } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { RequestHandler } from "./listener.js";

/** The header that carries it both ways. */
export const REQUEST_ID_HEADER = "x-request-id";

/** 1 to 128 of letters, digits and `-_.:`: what tracing systems send, and nothing a log line could be forged with. */
const SANE = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's id when it is sane, else undefined. */
export function saneRequestId(value: string | null | undefined): string | undefined {
  return value !== null && value !== undefined && SANE.test(value) ? value : undefined;
}

/** Random bytes for 512 ids, refilled when used up: one CSPRNG call per 512 requests instead of one each. */
const pool = Buffer.alloc(8 * 512);
let poolAt = pool.length;

/** A new id: 16 hex digits, never reused (each comes from unread pool bytes). */
export function newRequestId(): string {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += 8;
  return pool.toString("hex", poolAt - 8, poolAt);
}

/**
 * Sets the request's id before anything reads it (the RPC interceptors log it, the decoding
 * guard too) and echoes it in the response headers, errors and 404s included.
 */
export function withRequestId(handler: RequestHandler): RequestHandler {
  return (req, res) => {
    res.setHeader(REQUEST_ID_HEADER, assignRequestId(req.headers));
    handler(req, res);
  };
}

/** The request's id (the caller's if sane, else a new one), written into its headers for everything after; for paths that serve a request without withRequestId. */
export function assignRequestId(headers: IncomingHttpHeaders): string {
  const given = headers[REQUEST_ID_HEADER];
  const id = saneRequestId(Array.isArray(given) ? given[0] : given) ?? newRequestId();
  headers[REQUEST_ID_HEADER] = id;
  return id;
}
