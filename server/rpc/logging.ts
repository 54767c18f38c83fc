// Access log interceptor: one line per call with procedure, caller, code, duration and request id; never bodies.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "../log.js";
import { newRequestId, REQUEST_ID_HEADER, saneRequestId } from "../net/request-id.js";
import { around } from "./around.js";
import { kPrincipal, kRequestId } from "./context.js";

/**
 * Logs every call when it ends (for streams: when the stream ends). The request id comes from
 * the HTTP layer (withRequestId); calls that bypass it (router transports) get one here.
 * It is echoed in the response headers and put in the context, so every line of the call carries it.
 */
export function createLoggingInterceptor(logger: Logger): Interceptor {
  return (next) => (req) => {
    const started = performance.now();
    const procedure = `${req.service.typeName}/${req.method.name}`;
    const requestId = saneRequestId(req.header.get(REQUEST_ID_HEADER)) ?? newRequestId();
    req.contextValues.set(kRequestId, requestId);
    const done = (error?: unknown) => {
      const principal = req.contextValues.get(kPrincipal);
      logger.log(error === undefined ? "info" : "warn", "rpc", {
        requestId,
        procedure,
        protocol: req.header.get("content-type") ?? "",
        tenant: principal?.tenant,
        tokenId: principal?.tokenId,
        code: error === undefined ? "ok" : Code[ConnectError.from(error).code],
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
    };
    return around(next, req, { succeeded: () => done(), failed: (error) => done(error) }).then((res) => {
      res.header.set(REQUEST_ID_HEADER, requestId);
      return res;
    });
  };
}
