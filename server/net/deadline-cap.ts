// Deadlines past Node's timer range are served as that range's end, not as already past.
import type { IncomingHttpHeaders } from "node:http";
import { parseTimeout } from "@connectrpc/connect/protocol-grpc";
import type { RequestHandler } from "./listener.js";

/**
 * The longest delay setTimeout keeps (2^31 - 1 ms, 24.8 days). Node runs a longer one after 1 ms,
 * with a warning, and Connect arms a call's deadline with a plain setTimeout: a client that sets a
 * 30-day deadline (a long watch, an "effectively forever" context) got DEADLINE_EXCEEDED at once.
 * Capping the header before Connect reads it keeps Connect's own parsing, errors and deadline
 * handling; such a call runs out after 24.8 days instead of later, and `timeoutMs()` says so.
 */
export const TIMER_MAX_MS = 0x7fffffff;

/** The cap as each protocol writes it: gRPC and gRPC-web in whole seconds, Connect in ms. */
const GRPC_CAP = `${Math.floor(TIMER_MAX_MS / 1000)}S`;
const CONNECT_CAP = String(TIMER_MAX_MS);

/**
 * Rewrites `grpc-timeout` and `connect-timeout-ms` in place when they are valid and past the cap.
 * A malformed or repeated value is left as it is, for Connect to refuse with its own error.
 */
export function capDeadlineHeaders(headers: IncomingHttpHeaders): void {
  const grpc = headers["grpc-timeout"];
  if (typeof grpc === "string") {
    const timeoutMs = parseTimeout(grpc, Number.POSITIVE_INFINITY).timeoutMs;
    if (timeoutMs !== undefined && timeoutMs > TIMER_MAX_MS) headers["grpc-timeout"] = GRPC_CAP;
  }
  const connect = headers["connect-timeout-ms"];
  if (typeof connect === "string" && /^\d{1,10}$/.test(connect) && Number(connect) > TIMER_MAX_MS) headers["connect-timeout-ms"] = CONNECT_CAP;
}

/** Caps every request's deadline before the handler (Connect's adapter) reads it. */
export function withDeadlineCap(handler: RequestHandler): RequestHandler {
  return (req, res) => {
    capDeadlineHeaders(req.headers);
    handler(req, res);
  };
}
