// etcd's failures as domain errors: what happened to the store, in words an operator can act on, never a key or a value.
import { VeilError } from "../errors.js";

/** What the error's name and message say (etcd3 types its errors by class; grpc-js by code). */
function describe(error: unknown): { name: string; message: string; code: number | undefined } {
  if (!(error instanceof Error)) return { name: "", message: String(error), code: undefined };
  const code = (error as { code?: unknown }).code;
  return { name: error.constructor.name, message: error.message, code: typeof code === "number" ? code : undefined };
}

/**
 * The reason etcd gave, reduced to a fixed phrase: etcd's own messages name no keys, but a
 * message we do not know could, so anything unrecognised is reported only by its class.
 */
function reason(message: string, name: string): string {
  const known = [
    "no leader",
    "request timed out",
    "leader changed",
    "too many requests",
    "request is too large",
    "too many operations in txn request",
    "duplicate key given in txn request",
    "required revision has been compacted",
    "authentication failed, invalid user ID or password",
    "permission denied",
    "user name is empty",
    "authentication is not enabled",
    "invalid auth token",
    "ECONNREFUSED",
    "No connection established",
    "Deadline exceeded",
  ];
  const hit = known.find((k) => message.includes(k));
  return hit ?? (name !== "" && name !== "Error" ? name : "unknown error");
}

/** True when the failure is etcd being unreachable or leaderless, which a retry may outlive. */
export function isTransient(error: unknown): boolean {
  const { name, message, code } = describe(error);
  if (error instanceof VeilError) return error.kind === "unavailable" && !/closed/.test(error.message);
  return (
    code === 14 ||
    code === 4 ||
    /GRPCUnavailableError|GRPCDeadlineExceededError|BrokenCircuitError|GRPCCancelledError/.test(name) ||
    /no leader|request timed out|leader changed|too many requests|No connection established|ECONNREFUSED|Deadline exceeded|circuit/i.test(message)
  );
}

/** Maps any etcd3/grpc failure to a VeilError whose message names etcd and the reason, nothing else. */
export function etcdError(error: unknown): VeilError {
  if (error instanceof VeilError) return error;
  const { name, message, code } = describe(error);
  const why = reason(message, name);
  if (/request is too large|too many operations/.test(message) || code === 8 || name === "GRPCResourceExhastedError") {
    return new VeilError("resource_exhausted", `store: etcd refused the write as too large (${why}); nothing was written: send fewer or smaller items per call`, {
      cause: error,
    });
  }
  if (/EtcdAuthenticationFailedError|EtcdInvalidAuthTokenError|GRPCUnauthenticatedError/.test(name) || /authentication failed|invalid auth token|user name is empty/.test(message)) {
    return new VeilError("failed_precondition", `store: etcd refused the credentials (${why}): check --etcd-username and its password`, { cause: error });
  }
  if (name === "EtcdPermissionDeniedError" || /permission denied/.test(message)) {
    return new VeilError("failed_precondition", `store: etcd denied access (${why}): grant the etcd user read and write on the --etcd-prefix range`, { cause: error });
  }
  if (/required revision has been compacted/.test(message)) {
    return new VeilError("unavailable", "store: etcd compacted the revision this read was pinned to; retry", { cause: error });
  }
  if (/ClientClosedError/.test(name)) return new VeilError("unavailable", "store: the etcd client is closed", { cause: error });
  return new VeilError("unavailable", `store: etcd is unreachable or has no leader (${why}); retry once etcd has a quorum`, { cause: error });
}
