// Deadlines past Node's timer range are served as that range's end, not as already past.
import type { IncomingHttpHeaders } from "node:http";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import { MAX_TIMER_MS } from "../domain/timer-range.js";
import type { RequestHandler } from "./listener.js";

// Connect arms a call's deadline with a plain setTimeout, which runs a delay past MAX_TIMER_MS
// (24.8 days) after 1 ms: a client that sets a 30-day deadline (a long watch, an "effectively
// forever" context) got DEADLINE_EXCEEDED at once. Capping the header before Connect reads it keeps
// Connect's own parsing, errors and deadline handling; such a call runs out after 24.8 days instead
// of later, and `timeoutMs()` says so.

/** The cap as each protocol writes it: gRPC and gRPC-web in whole seconds, Connect in ms. */
const GRPC_CAP = `${Math.floor(MAX_TIMER_MS / 1000)}S`;
const CONNECT_CAP = String(MAX_TIMER_MS);

/**
 * Rewrites `grpc-timeout` and `connect-timeout-ms` in place when they are valid and past the cap.
 * A malformed or repeated value is left as it is, for Connect to refuse with its own error.
 */
export function capDeadlineHeaders(headers: IncomingHttpHeaders): void {
  if (pastRange(headers["grpc-timeout"], parseGrpcTimeout)) headers["grpc-timeout"] = GRPC_CAP;
  if (pastRange(headers["connect-timeout-ms"], parseConnectTimeout)) headers["connect-timeout-ms"] = CONNECT_CAP;
}

/** Whether a single header value parses (as Connect parses it, no maximum) to more than the timer range. */
function pastRange(value: string | string[] | undefined, parse: (value: string, maxTimeoutMs: number) => { timeoutMs?: number }): boolean {
  if (typeof value !== "string") return false;
  const timeoutMs = parse(value, Number.POSITIVE_INFINITY).timeoutMs;
  return timeoutMs !== undefined && timeoutMs > MAX_TIMER_MS;
}

/** Caps every request's deadline before the handler (Connect's adapter) reads it. */
export function withDeadlineCap(handler: RequestHandler): RequestHandler {
  return (req, res) => {
    capDeadlineHeaders(req.headers);
    handler(req, res);
  };
}
