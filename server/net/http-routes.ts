// Plain HTTP routes (the console's files, MCP) in front of the RPC handler, on the same port.
import type { NodeRequest, NodeResponse, RequestHandler } from "./listener.js";

/** One HTTP route: claims the requests it serves, leaves every other to the next. */
export interface HttpRoute {
  /** Whether this route serves the request (by method and path; never by reading the body). */
  matches(req: NodeRequest): boolean;
  handle(req: NodeRequest, res: NodeResponse): void;
}

/** Serves the first matching route, or hands the request to `rpc` (which answers unknown paths 404). */
export function withHttpRoutes(routes: readonly HttpRoute[], rpc: RequestHandler): RequestHandler {
  if (routes.length === 0) return rpc;
  return (req, res) => {
    for (const route of routes) {
      if (route.matches(req)) return route.handle(req, res);
    }
    rpc(req, res);
  };
}
