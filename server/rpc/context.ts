// Context values the interceptors set for the handlers.
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Principal } from "../domain/principal.js";

/** The authenticated caller; set by the auth interceptor. */
export const kPrincipal = createContextKey<Principal | undefined>(undefined, { description: "veil principal" });

/** The call's request id (`x-request-id`); set by the logging interceptor, for every log line of the call. */
export const kRequestId = createContextKey<string | undefined>(undefined, { description: "veil request id" });

/** The caller of a handler; the auth interceptor guarantees it on every protected procedure. */
export function principalOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(kPrincipal);
  if (principal === undefined) throw new ConnectError("authorization: missing bearer token", Code.Unauthenticated);
  return principal;
}
