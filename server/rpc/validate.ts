// Validation at the edge: each request against its method's schema; a failure is INVALID_ARGUMENT naming the field and the rule, never the value.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { z } from "zod";
import { RPC_RULES, type RpcRules, ruleOf } from "./rules.js";

/**
 * Formats a zod path the way the proto fields read: `secrets[2].name`, and a map's key in
 * brackets as the caller wrote it (`env[MY_VAR]`, `files[conf/app.env]`). Walking the input tells
 * a message's field (snake_cased) from a map key: maps are plain objects, messages carry $typeName.
 */
function fieldPath(path: readonly PropertyKey[], input: unknown): string {
  let at: unknown = input;
  let out = "";
  for (const p of path) {
    const isMapKey = typeof p !== "number" && at !== null && typeof at === "object" && !Array.isArray(at) && !("$typeName" in at);
    if (typeof p === "number" || isMapKey) out += `[${String(p)}]`;
    else out += `${out === "" ? "" : "."}${snake(String(p))}`;
    at = at !== null && typeof at === "object" ? (at as Record<PropertyKey, unknown>)[p] : undefined;
  }
  return out;
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Validates a request; throws ConnectError(INVALID_ARGUMENT) listing every broken rule. */
export function validate<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${fieldPath(issue.path, input) || "request"}: ${issue.message}`);
  throw new ConnectError(problems.join("; "), Code.InvalidArgument);
}

/**
 * Validates every request against its rule's schema before the handler sees it. Innermost of
 * the interceptors, as the handlers' own checks were: an invalid call is authenticated first
 * and leaves its audit event. A server stream's one request is checked as the handler reads it.
 */
export function createValidationInterceptor(rules: RpcRules = RPC_RULES): Interceptor {
  return (next) => (req) => {
    const schema = ruleOf(rules, req.method).request;
    if (schema === null) return next(req);
    if (!req.stream) {
      validate(schema, req.message);
      return next(req);
    }
    const messages = req.message;
    return next({
      ...req,
      message: (async function* () {
        for await (const message of messages) {
          validate(schema, message);
          yield message;
        }
      })(),
    });
  };
}
