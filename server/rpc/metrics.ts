// Metrics interceptor: counts every call by procedure and final code, and times it (streams until they end).
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { Metrics } from "../metrics.js";
import { around } from "./around.js";

/** Outermost interceptor, so the code counted is the one the client sees. */
export function createMetricsInterceptor(metrics: Metrics): Interceptor {
  return (next) => (req) => {
    const started = performance.now();
    // A registered method's name: the router only runs interceptors for procedures it serves.
    const procedure = `${req.service.typeName}/${req.method.name}`;
    const done = (code: string) => metrics.rpc(procedure, code, (performance.now() - started) / 1000);
    return around(next, req, {
      succeeded: () => done("ok"),
      failed: (error) => done(codeToString(ConnectError.from(error).code)),
    });
  };
}
