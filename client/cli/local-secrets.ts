// Secrets read by the CLI itself (`run --local`, `inject`): each named one fetched with GetSecret, refusals naming it.
import { ConnectError } from "@connectrpc/connect";
import type { SecretValue } from "../../server/domain/secret-records.js";
import { VeilError } from "../../server/errors.js";
import { parseEnvValue, referencedNames, renderTemplate, type TemplatePart } from "../../server/domain/templates.js";
import type { VeilClient } from "../index.js";
import { CliFailure, codeName, EXIT } from "./io.js";

/**
 * Reads every named secret (each once), in `session` layered over the tenant. The caller must
 * be allowed to read values: an admin, or an agent listed in the secret's agent_readers. The
 * first refusal or missing secret throws before anything is used.
 */
export async function readSecrets(client: VeilClient, session: string, names: Iterable<string>): Promise<Map<string, SecretValue>> {
  const values = new Map<string, SecretValue>();
  for (const name of new Set(names)) {
    try {
      const res = await client.secrets.getSecret({ session, name, version: 0n });
      values.set(name, res.text !== undefined ? { kind: "text", text: res.text } : { kind: "fields", fields: { ...res.fields } });
    } catch (error) {
      if (!(error instanceof ConnectError)) throw error;
      const exitCode = { NOT_FOUND: EXIT.notFound, PERMISSION_DENIED: EXIT.denied, UNAUTHENTICATED: EXIT.denied, INVALID_ARGUMENT: EXIT.invalid }[codeName(error.code)] ?? EXIT.failure;
      throw new CliFailure(`secret ${name}: ${codeName(error.code)}: ${error.rawMessage}`, exitCode);
    }
  }
  return values;
}

/** Bad reference or expression syntax (or a wrong field): exit 6, as INVALID_ARGUMENT, the message giving the place. */
export function syntaxFailure(error: unknown): never {
  if (error instanceof VeilError && error.kind === "invalid_argument") throw new CliFailure(error.message, EXIT.invalid);
  throw error;
}

/** Parsed env values: KEY to template parts; a bad reference or expression names where it was written. */
export function parseEnv(entries: readonly { key: string; value: string; where: string }[]): Map<string, TemplatePart[]> {
  const parsed = new Map<string, TemplatePart[]>();
  for (const { key, value, where } of entries) {
    try {
      parsed.set(key, parseEnvValue(value, `${where}: ${key}`));
    } catch (error) {
      syntaxFailure(error);
    }
  }
  return parsed;
}

/** The names every parsed value refers to. */
export function namesIn(templates: Iterable<TemplatePart[]>): string[] {
  return [...templates].flatMap((parts) => referencedNames(parts));
}

/** Renders parsed parts with values already read; a wrong field is a failure naming the secret and its fields. */
export function render(parts: readonly TemplatePart[], values: ReadonlyMap<string, SecretValue>, where: string): string {
  try {
    return renderTemplate(parts, (name) => values.get(name)!, where);
  } catch (error) {
    return syntaxFailure(error);
  }
}
