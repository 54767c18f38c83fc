// Domain errors: what went wrong in terms the transport can map to a status code.

/** The kinds of failure the domain reports; each maps to one gRPC code at the edge. */
export type VeilErrorKind =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "aborted"
  | "data_loss"
  | "resource_exhausted"
  | "failed_precondition"
  | "unavailable"
  | "internal";

/**
 * A failure with a kind and a message that is safe to send to the caller:
 * it names fields and rules, never a secret value. Internal detail goes in `cause`.
 */
export class VeilError extends Error {
  override readonly name = "VeilError";
  constructor(
    readonly kind: VeilErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Shorthand constructors keep call sites on one line. */
export const fail = {
  invalid: (message: string) => new VeilError("invalid_argument", message),
  notFound: (message: string) => new VeilError("not_found", message),
  denied: (message: string) => new VeilError("permission_denied", message),
  aborted: (message: string) => new VeilError("aborted", message),
  dataLoss: (message: string, cause?: unknown) => new VeilError("data_loss", message, { cause }),
  exhausted: (message: string) => new VeilError("resource_exhausted", message),
  unauthenticated: (message: string) => new VeilError("unauthenticated", message),
  precondition: (message: string) => new VeilError("failed_precondition", message),
};
