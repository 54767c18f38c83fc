// What a conversation injects: environment entries for each secret in force, and which commands get which.
import { createPlaceholder, type Substitution } from "./egress-binding.js";
import type { SecretValue } from "./secret-records.js";

/** One secret in force in a conversation: its environment entries and the values to mask. */
export interface InjectedSecret {
  /** The declared (or sealed/settings) name, as listed in `started`. */
  name: string;
  /** Environment variables it sets: NAME for text; NAME_FIELD per field and NAME as JSON for fields. */
  env: Record<string, string>;
  /** Every raw value that must be masked in output. */
  values: string[];
  /** Environment names holding a placeholder instead of a value (secrets with egress hosts). */
  placeholders?: string[];
  /** What the egress gateway swaps back: one per placeholder. */
  substitutions?: Substitution[];
}

/** A secret's egress hosts: with any, it is injected as placeholders, never as its value. */
export interface EgressHosts {
  hosts: readonly string[];
  body: boolean;
}

/** The environment name of a field of a `fields` secret: DB + password -> DB_PASSWORD. */
export function fieldEnvName(secret: string, field: string): string {
  return `${secret}_${field.toUpperCase().replace(/[^A-Z0-9_]/g, "_")}`;
}

/**
 * Turns a secret value into the variables a command sees. With egress hosts every value
 * (each field of a fields secret) becomes a fresh placeholder, unique within `taken` (the
 * conversation's placeholders so far, which it extends); NAME of a fields secret is then the
 * JSON of the placeholders. The real values stay in `values`: they are masked all the same.
 */
export function injectSecret(name: string, value: SecretValue, egress?: EgressHosts, taken: Set<string> = new Set()): InjectedSecret {
  const withHosts = egress !== undefined && egress.hosts.length > 0;
  const substitutions: Substitution[] = [];
  const stand = (secret: string, v: string): string => {
    if (!withHosts) return v;
    const placeholder = createPlaceholder(v, taken);
    taken.add(placeholder);
    substitutions.push(Object.freeze({ placeholder, value: v, secret, hosts: Object.freeze([...egress.hosts]), body: egress.body }));
    return placeholder;
  };
  let injected: InjectedSecret;
  if (value.kind === "text") {
    injected = { name, env: { [name]: stand(name, value.text) }, values: [value.text] };
  } else {
    const env: Record<string, string> = {};
    const shown: Record<string, string> = {};
    for (const [field, v] of Object.entries(value.fields)) env[fieldEnvName(name, field)] = shown[field] = stand(`${name}.${field}`, v);
    env[name] = JSON.stringify(shown);
    injected = { name, env, values: [...Object.values(value.fields), JSON.stringify(value.fields)] };
  }
  return withHosts ? { ...injected, placeholders: Object.keys(injected.env), substitutions } : injected;
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
