// `veil run --local`: reads the secrets here (GetSecret), then runs the command on this machine with masked output, like `op run`.
import { injectSecret } from "../../../server/domain/injection.js";
import { createMaskSet } from "../../../server/domain/masker.js";
import type { VeilClient } from "../../index.js";
import type { EnvEntry } from "../env-file.js";
import { UsageError } from "../io.js";
import { runLocal } from "../local-run.js";
import { namesIn, parseEnv, readSecrets, render } from "../local-secrets.js";

/** What `veil run --local` was asked to do. */
export interface LocalRequest {
  words: readonly string[];
  secrets: readonly string[];
  session: string;
  /** --env-file entries, then --env ones (later wins). */
  env: readonly EnvEntry[];
  masking: boolean;
}

const note = (text: string) => process.stderr.write(`veil run: ${text}\n`);

/** Resolves everything first (a refusal runs nothing), then runs the command; resolves to its exit code. */
export async function runLocalRequest(client: VeilClient, req: LocalRequest): Promise<number> {
  const parsed = parseEnv(req.env);
  const values = await readSecrets(client, req.session, [...req.secrets, ...namesIn(parsed.values())]);
  const extra: Record<string, string> = {};
  const owner = new Map<string, string>();
  const maskValues: string[] = [];
  const valuesOf = new Map<string, string[]>();
  for (const [name, value] of values) {
    const injected = injectSecret(name, value);
    maskValues.push(...injected.values);
    valuesOf.set(name, injected.values);
    if (!req.secrets.includes(name)) continue;
    for (const [key, v] of Object.entries(injected.env)) {
      // As the server does: one variable, one source, or the command would see the wrong value.
      const other = owner.get(key);
      if (other !== undefined) throw new UsageError(`--secret ${name} sets ${key}, which secret ${other} also sets`);
      owner.set(key, name);
      extra[key] = v;
    }
  }
  for (const { key, where } of req.env) {
    if (owner.has(key)) throw new UsageError(`${where}: ${key} is also set by --secret ${owner.get(key)}`);
    extra[key] = render(parsed.get(key)!, values, `${where}: ${key}`);
  }
  const masks = req.masking ? createMaskSet(maskValues) : undefined;
  if (masks !== undefined && masks.unmaskedValues.length > 0) {
    const short = [...valuesOf].filter(([, vs]) => vs.some((v) => masks.unmaskedValues.includes(v))).map(([name]) => name);
    note(`too short to mask, shown as is: ${short.sort().join(", ")}`);
  }
  if (!req.masking) note("--no-masking: output is NOT masked; secret values the command prints will show");
  return runLocal({ argv: req.words, env: { ...process.env, ...extra }, masks, note });
}
