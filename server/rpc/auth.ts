// Auth interceptor: bearer token in, principal into the context, or UNAUTHENTICATED.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Tokens } from "../domain/tokens.js";
import { kPrincipal } from "./context.js";

/** Services callable without a token: health checks and schema reflection carry no data. */
const PUBLIC_SERVICES = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

/** Authenticates every call to a non-public service. */
export function createAuthInterceptor(tokens: Tokens): Interceptor {
  return (next) => async (req) => {
    if (PUBLIC_SERVICES.has(req.service.typeName)) return next(req);
    const header = req.header.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) {
      throw new ConnectError("authorization: expected header `authorization: Bearer <token>`", Code.Unauthenticated);
    }
    req.contextValues.set(kPrincipal, await tokens.authenticate(match[1]!));
    return next(req);
  };
}
