// Access log interceptor: one line per call with procedure, caller, code and duration; never bodies.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "../log.js";
import { around } from "./around.js";
import { kPrincipal } from "./context.js";

/** Logs every call when it ends (for streams: when the stream ends). */
export function createLoggingInterceptor(logger: Logger): Interceptor {
  return (next) => (req) => {
    const started = performance.now();
    const procedure = `${req.service.typeName}/${req.method.name}`;
    const done = (error?: unknown) => {
      const principal = req.contextValues.get(kPrincipal);
      logger.log(error === undefined ? "info" : "warn", "rpc", {
        procedure,
        protocol: req.header.get("content-type") ?? "",
        tenant: principal?.tenant,
        tokenId: principal?.tokenId,
        code: error === undefined ? "ok" : Code[ConnectError.from(error).code],
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
    };
    return around(next, req, { succeeded: () => done(), failed: (error) => done(error) });
  };
}
