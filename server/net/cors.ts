// Lets browser pages on other origins call Veil over Connect-Web and gRPC-Web: preflight answers and CORS response headers.
import { cors } from "@connectrpc/connect";
import type { NodeRequest, RequestHandler } from "./listener.js";

/** Which origins may call the server from a browser. */
export interface CorsOptions {
  /**
   * Origins allowed to call from other origins, e.g. `["https://app.example.com"]` (`--cors-origin`),
   * or "*" for any. Default: none besides the server's own origin, which a page served from this
   * port (the console) always is.
   *
   * Veil authenticates with bearer tokens in the `authorization` header, never cookies, and never
   * sends `Access-Control-Allow-Credentials`: a browser attaches no ambient credential, so CORS only
   * decides which pages may *read* answers to calls they make with a token they already hold.
   * Naming the origins is defense in depth: pages of other sites cannot read Veil's answers
   * through a browser, whatever token they get hold of.
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
const exposeHeaders = [...cors.exposedHeaders, "x-request-id"].join(", ");

/**
 * Wraps a handler with CORS: answers preflight requests itself (204; the Connect adapter
 * would answer OPTIONS with 405) and adds the CORS headers to every cross-origin response.
 * Requests without an `Origin` header pass through untouched.
 */
export function withCors(handler: RequestHandler, options: CorsOptions = {}): RequestHandler {
  const allowed = options.allowedOrigins ?? [];
  const maxAge = String(options.maxAgeSeconds ?? 7200);
  return (req, res) => {
    const origin = header(req, "origin");
    if (origin === undefined) {
      handler(req, res);
      return;
    }
    const permitted = allowed === "*" || allowed.includes(origin) || origin === ownOrigin(req);
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

/** The origin this request was addressed to (`scheme://host[:port]`), as a page served from here would send it. */
function ownOrigin(req: NodeRequest): string | undefined {
  const authority = header(req, ":authority") ?? header(req, "host");
  if (authority === undefined) return undefined;
  const scheme = header(req, ":scheme") ?? ((req.socket as { encrypted?: boolean }).encrypted === true ? "https" : "http");
  return `${scheme}://${authority}`;
}

function header(req: NodeRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
