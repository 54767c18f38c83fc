// Turns a zod failure into INVALID_ARGUMENT naming the field and the rule, never the value.
import { Code, ConnectError } from "@connectrpc/connect";
import type { z } from "zod";

/** Formats a zod path the way the proto fields read: `secrets[2].name`. */
function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${snake(String(p))}`))
    .join("");
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Validates a request; throws ConnectError(INVALID_ARGUMENT) listing every broken rule. */
export function validate<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${fieldPath(issue.path) || "request"}: ${issue.message}`);
  throw new ConnectError(problems.join("; "), Code.InvalidArgument);
}
