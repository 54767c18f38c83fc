// Lets browser pages on other origins call Veil over Connect-Web and gRPC-Web: preflight answers and CORS response headers.
import { cors } from "@connectrpc/connect";
import type { NodeRequest, RequestHandler } from "./listener.js";

/** Which origins may call the server from a browser. */
export interface CorsOptions {
  /**
   * Origins allowed to call, e.g. `["https://app.example.com"]`, or "*" for any (default).
   *
   * Any origin is the default because Veil authenticates with bearer tokens sent in the
   * `authorization` header, never with cookies: a browser attaches no ambient credential,
   * so a foreign page can do nothing it could not do with `curl` and a token it already
   * holds. CORS here only decides whether the browser lets the page *read* answers it is
   * entitled to. The server binds 127.0.0.1 by default as well.
   */
  allowedOrigins?: readonly string[] | "*";
  /** How long browsers may cache a preflight answer (default 7200 s, Chromium's cap). */
  maxAgeSeconds?: number;
}

// Connect's lists cover the protocol headers (content-type, connect-*, grpc-*, x-grpc-web,
// x-user-agent); `authorization` is ours. It must be named explicitly: a wildcard in
// Access-Control-Allow-Headers never covers it.
const allowHeaders = [...cors.allowedHeaders, "authorization"].join(", ");
const allowMethods = cors.allowedMethods.join(", ");
const exposeHeaders = cors.exposedHeaders.join(", ");

/**
 * Wraps a handler with CORS: answers preflight requests itself (204; the Connect adapter
 * would answer OPTIONS with 405) and adds the CORS headers to every cross-origin response.
 * Requests without an `Origin` header pass through untouched.
 */
export function withCors(handler: RequestHandler, options: CorsOptions = {}): RequestHandler {
  const allowed = options.allowedOrigins ?? "*";
  const maxAge = String(options.maxAgeSeconds ?? 7200);
  return (req, res) => {
    const origin = header(req, "origin");
    if (origin === undefined) {
      handler(req, res);
      return;
    }
    const permitted = allowed === "*" || allowed.includes(origin);
    const isPreflight = req.method === "OPTIONS" && header(req, "access-control-request-method") !== undefined;
    if (!permitted) {
      if (isPreflight) {
        // Without CORS headers the browser fails the call, and the handler never runs.
        res.statusCode = 403;
        res.end();
        return;
      }
      // Serve it without CORS headers: the browser withholds the answer from the page.
      handler(req, res);
      return;
    }
    // A fixed "*" is cacheable by shared caches; an echoed origin must vary by Origin.
    res.setHeader("access-control-allow-origin", allowed === "*" ? "*" : origin);
    if (allowed !== "*") res.setHeader("vary", "origin");
    if (isPreflight) {
      res.setHeader("access-control-allow-methods", allowMethods);
      res.setHeader("access-control-allow-headers", allowHeaders);
      res.setHeader("access-control-max-age", maxAge);
      res.statusCode = 204;
      res.end();
      return;
    }
    res.setHeader("access-control-expose-headers", exposeHeaders);
    handler(req, res);
  };
}

function header(req: NodeRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
