// The secrets a conversation uses: declared ones injected, and those its env values and files name resolved, masked and rendered.
import { type InjectedSecret, injectSecret } from "./injection.js";
import type { Lookups } from "./lookups.js";
import type { Principal } from "./principal.js";
import type { SecretRecord, SecretValue, StoredValue } from "./secret-records.js";
import { parseEnvValue, parseTemplate, referencedNames, renderTemplate, type TemplatePart, type TemplateValue } from "./templates.js";
import type { Vault } from "./vault.js";
import { checkFilePaths } from "./workspace-files.js";

/** What a start asks for that names secrets. */
export interface SecretUse {
  session: string;
  /** Declared: injected as $NAME (and fields), masked. */
  secrets: readonly string[];
  /** Values may be a reference or hold expressions. */
  env: Record<string, string>;
  /** Workspace-relative path to template text. */
  files: Record<string, string>;
}

/** The outcome: every secret in force, and env and files with their references rendered. */
export interface PreparedSecrets {
  /** Declared ones (injected), then referenced-only ones (env empty: masked, never injected). */
  secrets: InjectedSecret[];
  env: Record<string, string>;
  files: Record<string, string>;
  /** Names only env values or files use, in order of first use (for the audit event). */
  referenced: string[];
}

type Resolved = Map<string, { record: SecretRecord; value: StoredValue }>;

/** Creates the preparer over the vault (the one place grants are checked) and the lookup resolver. */
export function createReferences(deps: { vault: Vault; lookups: Lookups }) {
  /** Opens each resolved secret (fetching lookups) and injects it; `where` names its request field. */
  async function inject(grantee: Principal, session: string, resolved: Resolved, where: (name: string) => string, taken: Set<string>) {
    const out = new Map<string, { injected: InjectedSecret; shown: TemplateValue }>();
    for (const [name, { record, value: stored }] of resolved) {
      const place = { principal: grantee, session, record, version: record.version, where: where(name) };
      const { value, masks } = await deps.lookups.open(place, stored);
      const injected = injectSecret(name, value, { hosts: record.egressHosts, body: record.egressBody }, taken);
      out.set(name, { injected: { ...injected, values: [...injected.values, ...masks] }, shown: shownValue(name, value, injected) });
    }
    return out;
  }

  /**
   * Parses first (bad syntax or a bad path is INVALID_ARGUMENT before any secret is read), then
   * resolves every name (missing NOT_FOUND, ungranted PERMISSION_DENIED) before any lookup is
   * fetched (a failure FAILED_PRECONDITION), then renders.
   */
  return async function prepare(grantee: Principal, use: SecretUse, taken: Set<string>): Promise<PreparedSecrets> {
    checkFilePaths(Object.keys(use.files));
    const env = Object.entries(use.env).map(([key, value]) => [key, parseEnvValue(value, `env[${key}]`)] as const);
    const files = Object.entries(use.files).map(([path, text]) => [path, parseTemplate(text, `files[${path}]`)] as const);
    const firstUse = new Map<string, string>();
    for (const [where, parts] of [...env.map(([k, p]) => [`env[${k}]`, p] as const), ...files.map(([f, p]) => [`files[${f}]`, p] as const)]) {
      for (const name of referencedNames(parts)) if (!use.secrets.includes(name) && !firstUse.has(name)) firstUse.set(name, where);
    }
    const referenced = [...firstUse.keys()];
    const declared = await deps.vault.resolve(grantee, use.session, use.secrets);
    const others = await deps.vault.resolve(grantee, use.session, referenced, (i) => firstUse.get(referenced[i]!)!);
    const declaredIndex = new Map(use.secrets.map((name, i) => [name, `secrets[${i}]`]));
    const opened = await inject(grantee, use.session, declared, (name) => declaredIndex.get(name)!, taken);
    const openedOthers = await inject(grantee, use.session, others, (name) => firstUse.get(name)!, taken);
    const shown = (name: string) => (opened.get(name) ?? openedOthers.get(name))!.shown;
    const render = (parts: readonly TemplatePart[], where: string) => renderTemplate(parts, shown, where);
    return {
      secrets: [
        ...[...opened.values()].map((o) => o.injected),
        // Masked like any secret, injected nowhere: not as $NAME unless also declared.
        ...[...openedOthers.values()].map(({ injected }) => ({ name: injected.name, env: {}, values: injected.values, ...(injected.substitutions ? { substitutions: injected.substitutions } : {}) })),
      ],
      env: Object.fromEntries(env.map(([key, parts]) => [key, render(parts, `env[${key}]`)])),
      files: Object.fromEntries(files.map(([path, parts]) => [path, render(parts, `files[${path}]`)])),
      referenced,
    };
  };
}

/**
 * What a reference renders as: the value, or, for a secret with egress hosts, the same
 * placeholders its injection uses (the gateway swaps them back, so the value stays out).
 */
function shownValue(name: string, value: SecretValue, injected: InjectedSecret): TemplateValue {
  if (value.kind === "text") return { kind: "text", text: injected.env[name]! };
  return { kind: "fields", fields: JSON.parse(injected.env[name]!) as Record<string, string> };
}

/** The preparer: one call per conversation start. */
export type References = ReturnType<typeof createReferences>;
