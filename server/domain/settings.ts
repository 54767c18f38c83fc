// Agent settings per tenant: LLM model, base URL and API key (sealed like a secret), plus free options.
import { type KvOp, type KvStore, retryOnConflict } from "../store/kv.js";
import { normalizeHostPattern } from "./egress-binding.js";
import type { Barrier } from "../crypto/barrier.js";
import type { Keyring } from "../crypto/keyring.js";

/** Settings as stored: the API key only as a keyring blob (base64). */
export interface StoredSettings {
  llm: { model?: string; baseUrl?: string; apiKey?: string; apiKeyEgressHosts?: string[] };
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

/** Key range of every tenant's settings (for re-encryption). */
export const SETTINGS_RANGE = { gte: "cfg\0", lt: "cfg\u0001" } as const;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Where a tenant's settings live. */
export const settingsKey = (tenant: string) => `cfg\0${tenant}`;

/** Prefix of every tenant's sealed API key (a family the crypto barrier seals). */
export const API_KEY_PREFIX = "cfgkey\0";

/** Where a tenant's sealed API key lives. */
export const apiKeyKey = (tenant: string) => `${API_KEY_PREFIX}${tenant}`;

/** Binds the API key blob to its tenant and field. */
export const settingsAad = (tenant: string) => enc.encode(`veil/v1 settings\0${tenant}\0llm.api_key`);

/** Decodes a stored settings record. */
export function decodeSettings(bytes: Uint8Array | undefined): StoredSettings {
  return bytes === undefined ? { llm: {}, options: {} } : (JSON.parse(dec.decode(bytes)) as StoredSettings);
}

/** Encodes a stored settings record. */
export function encodeSettings(settings: StoredSettings): Uint8Array {
  return enc.encode(JSON.stringify(settings));
}

/** Creates the settings store. */
export function createSettings(store: KvStore, barrier: Barrier) {
  async function openKey(tenant: string, stored: StoredSettings): Promise<string | undefined> {
    if (stored.llm.apiKey === undefined) return undefined;
    return dec.decode(await barrier.open(apiKeyKey(tenant), Buffer.from(stored.llm.apiKey, "base64")));
  }

  return {
    /** Reads a tenant's settings with the API key opened. */
    async read(tenant: string): Promise<PlainSettings> {
      const stored = decodeSettings(await store.get(settingsKey(tenant)));
      const { apiKey: _sealed, ...llm } = stored.llm;
      const apiKey = await openKey(tenant, stored);
      return { llm: { ...llm, ...(apiKey !== undefined ? { apiKey } : {}) }, options: stored.options };
    },

    /** Applies a partial update atomically (guarded against a concurrent update). */
    async update(tenant: string, patch: SettingsPatch, extraOps: KvOp[] = []): Promise<void> {
      const key = settingsKey(tenant);
      await retryOnConflict(async () => {
        const raw = await store.get(key);
        const next = decodeSettings(raw);
        const llm = { ...next.llm };
        const apply = (field: "model" | "baseUrl" | "apiKey", value: string | undefined, transform: (v: string) => string = (v) => v) => {
          if (value === undefined) return;
          if (value === "") delete llm[field];
          else llm[field] = transform(value);
        };
        apply("model", patch.model);
        apply("baseUrl", patch.baseUrl);
        apply("apiKey", patch.apiKey, (v) => Buffer.from(barrier.seal(apiKeyKey(tenant), enc.encode(v))).toString("base64"));
        if (patch.apiKeyEgressHosts !== undefined) {
          const hosts = [...new Set(patch.apiKeyEgressHosts.map(normalizeHostPattern))].sort();
          if (hosts.length === 0) delete llm.apiKeyEgressHosts;
          else llm.apiKeyEgressHosts = hosts;
        }
        const options = { ...next.options };
        for (const [k, v] of Object.entries(patch.options)) {
          if (v === "") delete options[k];
          else options[k] = v;
        }
        const record: StoredSettings = { llm, options, updatedAt: new Date().toISOString() };
        await store.write([{ type: "put", key, value: encodeSettings(record) }, ...extraOps], [{ key, value: raw }]);
      });
    },
  };
}

/** The settings store's operations. */
export type Settings = ReturnType<typeof createSettings>;

/** Where settings keep keyring blobs, for re-encryption on rotation. */
export const settingsBlobSource = {
  name: "settings",
  range: SETTINGS_RANGE,
  generations(_key: string, value: Uint8Array): number[] {
    const apiKey = decodeSettings(value).llm.apiKey;
    return apiKey === undefined ? [] : [Buffer.from(apiKey, "base64").readUInt32BE(1)];
  },
  reseal(key: string, value: Uint8Array, keyring: Keyring): Uint8Array {
    const tenant = key.slice("cfg\0".length);
    const stored = decodeSettings(value);
    if (stored.llm.apiKey === undefined) return value;
    const plain = keyring.open(tenant, Buffer.from(stored.llm.apiKey, "base64"), settingsAad(tenant));
    const apiKey = Buffer.from(keyring.seal(tenant, plain, settingsAad(tenant))).toString("base64");
    plain.fill(0);
    return encodeSettings({ ...stored, llm: { ...stored.llm, apiKey } });
  },
};
