// Error interceptor: domain errors become ConnectErrors with their code; surprises become INTERNAL.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { VeilError, type VeilErrorKind } from "../errors.js";
import { describeError, type Logger } from "../log.js";
import { around } from "./around.js";
import { kRequestId } from "./context.js";

const CODES: Record<VeilErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  aborted: Code.Aborted,
  data_loss: Code.DataLoss,
  resource_exhausted: Code.ResourceExhausted,
  failed_precondition: Code.FailedPrecondition,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

/** Maps any thrown error to what the client may see. */
export function toConnectError(error: unknown, logger: Logger, procedure: string): ConnectError {
  if (error instanceof VeilError) return new ConnectError(error.message, CODES[error.kind]);
  if (error instanceof ConnectError) return error;
  // A file write outside the store (a workspace, a token file) on a full disk: the caller can
  // do nothing about it but should know why. Node's message names the path, so it is not passed on.
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (errno === "ENOSPC" || errno === "EDQUOT") {
    logger.log("warn", "disk full", { procedure, code: errno });
    return new ConnectError(errno === "ENOSPC" ? "no space left on device" : "disk quota exceeded", Code.ResourceExhausted);
  }
  // Unexpected: the message may quote data, so the client gets a generic one and the log gets no message.
  logger.log("error", "unexpected error", { procedure, ...describeError(error) });
  return new ConnectError("internal error", Code.Internal);
}

/** Translates errors of unary calls and of server streams (thrown mid-iteration). */
export function createErrorInterceptor(logger: Logger): Interceptor {
  return (next) => (req) => {
    const procedure = `${req.method.parent.typeName}/${req.method.name}`;
    return around(next, req, {
      failed(error) {
        const requestId = req.contextValues.get(kRequestId);
        throw toConnectError(error, { log: (level, msg, fields) => logger.log(level, msg, { requestId, ...fields }) }, procedure);
      },
    });
  };
}
