// Maps the server's INVALID_ARGUMENT messages ("secrets[0].name: must match ...; ...") to the form fields they name.
import { Code } from "@connectrpc/connect";
import { errorCode, errorText } from "./api.js";

/** Messages per form field, plus what no field claimed. */
export interface FormErrors {
  fields: Record<string, string>;
  general?: string;
}

/** A segment starts with a field path and ": " (the server's validate() format). */
const SEGMENT = /^([a-z_]+(?:\[[^\]]*\])?(?:\.[A-Za-z0-9_-]+|\[[^\]]*\])*): (.*)$/s;

/** Splits one message into [path, rule] pairs; problems are joined by "; " before the next path. */
export function parseProblems(message: string): { path: string; rule: string }[] {
  const parts = message.split(/; (?=[a-z_]+(?:\[\d+\])?[.:[])/);
  return parts.map((part) => {
    const m = SEGMENT.exec(part);
    return m ? { path: m[1]!, rule: m[2]! } : { path: "", rule: part };
  });
}

/**
 * Turns an error into field messages. `fieldOf` maps a server path (prefix `secrets[0].` already
 * stripped by the caller's choice of `strip`) to a form field; unclaimed problems become `general`.
 */
export function formErrors(error: unknown, fieldOf: (path: string) => string | undefined, strip = /^secrets\[\d+\]\./): FormErrors {
  if (errorCode(error) !== Code.InvalidArgument) return { fields: {}, general: errorText(error) };
  const fields: Record<string, string> = {};
  const rest: string[] = [];
  for (const { path, rule } of parseProblems(errorText(error))) {
    const field = fieldOf(path.replace(strip, ""));
    if (field !== undefined && fields[field] === undefined) fields[field] = rule;
    else rest.push(path ? `${path}: ${rule}` : rule);
  }
  return rest.length > 0 ? { fields, general: rest.join("; ") } : { fields };
}

/** The usual mapping for a SecretInput's fields. */
export function secretFieldOf(path: string): string | undefined {
  const head = path.split(/[.[]/)[0];
  switch (head) {
    case "name":
      return "name";
    case "description":
      return "description";
    case "text":
    case "fields":
      return "value";
    case "allowed_agents":
      return "agents";
    case "agent_readers":
      return "readers";
    default:
      return undefined;
  }
}
