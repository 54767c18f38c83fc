// Agent settings per tenant: LLM model, base URL and API key (sealed like a secret), plus free options.
import { type KvOp, type KvStore, retryOnConflict } from "../store/kv.js";
import { normalizeHostPattern } from "./egress-binding.js";
import type { Barrier } from "../crypto/barrier.js";
import { apiKeyKey } from "../crypto/sealed-paths.js";

/** Settings as stored, in the clear; the API key is its own sealed value (apiKeyKey), never in here. */
export interface StoredSettings {
  llm: { model?: string; baseUrl?: string; apiKeyEgressHosts?: string[] };
  options: Record<string, string>;
  updatedAt?: string;
}

/** Settings in the clear, for the server's own use (injection, sealing); never answered as is. */
export interface PlainSettings {
  /** apiKeyEgressHosts: host patterns of the API key (lowercased); set = injected as a placeholder. */
  llm: { model?: string; baseUrl?: string; apiKey?: string; apiKeyEgressHosts?: string[] };
  options: Record<string, string>;
}

/** A partial update: a field present changes ("" clears it), a field absent stays; an option "" is removed. */
export interface SettingsPatch {
  model?: string;
  baseUrl?: string;
  apiKey?: string;
  /** Host patterns of the API key (validated); [] clears them. */
  apiKeyEgressHosts?: string[];
  options: Record<string, string>;
}

/** Key range of every tenant's settings record (the layout migration walks it). */
export const SETTINGS_RANGE = { gte: "cfg\0", lt: "cfg\u0001" } as const;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Where a tenant's settings live. */
export const settingsKey = (tenant: string) => `cfg\0${tenant}`;


/** Decodes a stored settings record. */
export function decodeSettings(bytes: Uint8Array | undefined): StoredSettings {
  return bytes === undefined ? { llm: {}, options: {} } : (JSON.parse(dec.decode(bytes)) as StoredSettings);
}

/** Encodes a stored settings record. */
export function encodeSettings(settings: StoredSettings): Uint8Array {
  return enc.encode(JSON.stringify(settings));
}

/** Creates the settings store; the API key is sealed by the barrier as its own store value. */
export function createSettings(store: KvStore, barrier: Barrier) {
  return {
    /** Reads a tenant's settings with the API key opened. */
    async read(tenant: string): Promise<PlainSettings> {
      const [raw, sealedKey] = await store.getMany([settingsKey(tenant), apiKeyKey(tenant)]);
      const stored = decodeSettings(raw);
      const apiKey = sealedKey === undefined ? undefined : dec.decode(await barrier.open(apiKeyKey(tenant), sealedKey));
      return { llm: { ...stored.llm, ...(apiKey !== undefined ? { apiKey } : {}) }, options: stored.options };
    },

    /** Applies a partial update atomically (guarded against a concurrent update); the API key rides in the same write. */
    async update(tenant: string, patch: SettingsPatch, extraOps: KvOp[] = []): Promise<void> {
      const key = settingsKey(tenant);
      await retryOnConflict(async () => {
        const raw = await store.get(key);
        const record = applyPatch(decodeSettings(raw), patch);
        const ops: KvOp[] = [{ type: "put", key, value: encodeSettings(record) }];
        if (patch.apiKey === "") ops.push({ type: "del", key: apiKeyKey(tenant) });
        else if (patch.apiKey !== undefined) ops.push(barrier.sealOp(apiKeyKey(tenant), enc.encode(patch.apiKey)));
        await store.write([...ops, ...extraOps], [{ key, value: raw }]);
      });
    },
  };
}

/** The clear part of an update: a field present changes ("" clears it), an option "" is removed. */
function applyPatch(current: StoredSettings, patch: SettingsPatch): StoredSettings {
  const llm = { ...current.llm };
  for (const field of ["model", "baseUrl"] as const) {
    const value = patch[field];
    if (value === "") delete llm[field];
    else if (value !== undefined) llm[field] = value;
  }
  if (patch.apiKeyEgressHosts !== undefined) {
    const hosts = [...new Set(patch.apiKeyEgressHosts.map(normalizeHostPattern))].sort();
    if (hosts.length === 0) delete llm.apiKeyEgressHosts;
    else llm.apiKeyEgressHosts = hosts;
  }
  const options = { ...current.options };
  for (const [k, v] of Object.entries(patch.options)) {
    if (v === "") delete options[k];
    else options[k] = v;
  }
  return { llm, options, updatedAt: new Date().toISOString() };
}

/** The settings store's operations. */
export type Settings = ReturnType<typeof createSettings>;
