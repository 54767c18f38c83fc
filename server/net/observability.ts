// GET /healthz and GET /metrics: plain HTTP for load balancers and Prometheus, no token (and no client certificate under mTLS).
import type { Registry } from "prom-client";
import type { HttpRoute } from "./http-routes.js";
import type { NodeRequest } from "./listener.js";

/** The path without its query string. */
function pathOf(req: NodeRequest): string {
  const url = req.url ?? "";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

function isRead(req: NodeRequest): boolean {
  return req.method === "GET" || req.method === "HEAD";
}

/** The paths served without a token or a client certificate. */
export const ANONYMOUS_PATHS: readonly string[] = ["/healthz", "/metrics"];

/** Whether a request is for one of the anonymous routes (the mTLS gate lets these through). */
export function isAnonymousRequest(req: NodeRequest): boolean {
  return isRead(req) && ANONYMOUS_PATHS.includes(pathOf(req));
}

/** `GET /healthz`: 200 `ok` while serving, 503 `draining` once shutdown began (before the port closes). */
export function healthzRoute(isServing: () => boolean): HttpRoute {
  return {
    matches: (req) => isRead(req) && pathOf(req) === "/healthz",
    handle(_req, res) {
      const serving = isServing();
      res.writeHead(serving ? 200 : 503, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
      res.end(serving ? "ok\n" : "draining\n");
    },
  };
}

/** `GET /metrics`: the registry in Prometheus text format. */
export function metricsRoute(registry: Registry): HttpRoute {
  return {
    matches: (req) => isRead(req) && pathOf(req) === "/metrics",
    handle(_req, res) {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
          res.end(text);
        },
        () => {
          res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
          res.end("metrics unavailable\n");
        },
      );
    },
  };
}
