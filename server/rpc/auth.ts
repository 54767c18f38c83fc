// Auth interceptor: bearer token in, principal into the context, or UNAUTHENTICATED; public methods by their rule.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Tokens } from "../domain/tokens.js";
import { kPrincipal } from "./context.js";
import { RPC_RULES, type RpcRules, ruleOf } from "./rules.js";

/** Authenticates every call to a method whose rule is not public; a method without a rule is refused. */
export function createAuthInterceptor(tokens: Tokens, rules: RpcRules = RPC_RULES): Interceptor {
  return (next) => async (req) => {
    if (ruleOf(rules, req.method).public) return next(req);
    const header = req.header.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) {
      throw new ConnectError("authorization: expected header `authorization: Bearer <token>`", Code.Unauthenticated);
    }
    req.contextValues.set(kPrincipal, await tokens.authenticate(match[1]!));
    return next(req);
  };
}
