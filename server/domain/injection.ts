// What a conversation injects: environment entries for each secret in force, and which commands get which.
import type { SecretValue } from "./secret-records.js";

/** One secret in force in a conversation: its environment entries and the values to mask. */
export interface InjectedSecret {
  /** The declared (or sealed/settings) name, as listed in `started`. */
  name: string;
  /** Environment variables it sets: NAME for text; NAME_FIELD per field and NAME as JSON for fields. */
  env: Record<string, string>;
  /** Every raw value that must be masked in output. */
  values: string[];
}

/** The environment name of a field of a `fields` secret: DB + password -> DB_PASSWORD. */
export function fieldEnvName(secret: string, field: string): string {
  return `${secret}_${field.toUpperCase().replace(/[^A-Z0-9_]/g, "_")}`;
}

/** Turns a secret value into the variables a command sees. */
export function injectSecret(name: string, value: SecretValue): InjectedSecret {
  if (value.kind === "text") return { name, env: { [name]: value.text }, values: [value.text] };
  const env: Record<string, string> = { [name]: JSON.stringify(value.fields) };
  for (const [field, v] of Object.entries(value.fields)) env[fieldEnvName(name, field)] = v;
  return { name, env, values: [...Object.values(value.fields), env[name]!] };
}

/**
 * The variable names a command's text references: `$NAME`, `${NAME}`, `${NAME:-x}`,
 * `${#NAME}`, `${!NAME}` and the like. Quoting is ignored on purpose: a reference inside
 * single quotes may still reach a shell (`bash -c '...$KEY'`), and injecting too much is
 * safe (output is masked) while injecting too little breaks the command.
 */
export function referencedNames(command: string): Set<string> {
  const names = new Set<string>();
  for (const match of command.matchAll(/\$\{?[#!]?([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(match[1]!);
  return names;
}

/** The environment one command receives under the INJECT_REFERENCED rule. */
export function referencedEnv(secrets: readonly InjectedSecret[], command: string): Record<string, string> {
  const wanted = referencedNames(command);
  const env: Record<string, string> = {};
  for (const secret of secrets) {
    for (const [key, value] of Object.entries(secret.env)) if (wanted.has(key)) env[key] = value;
  }
  return env;
}
