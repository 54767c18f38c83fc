// Layout 1 -> 2: each tenant's API-key blob moves out of its settings JSON into its own sealed store value.
import { apiKeyKey } from "./crypto/sealed-paths.js";
import { SETTINGS_RANGE } from "./domain/settings.js";
import { type KvStore, retryOnConflict } from "./store/kv.js";

/** Settings records read per page while migrating. */
const PAGE = 256;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A layout-1 settings record: the API key embedded as a base64 keyring blob. */
interface LegacySettings {
  llm: { apiKey?: string } & Record<string, unknown>;
  [field: string]: unknown;
}

/**
 * Moves one tenant's embedded blob as it is: its associated data (settingsAad of the tenant)
 * does not depend on where it is stored, so nothing is decrypted or re-sealed. One guarded
 * write per tenant: the new key and the trimmed record land together or not at all.
 */
async function migrateOne(store: KvStore, key: string): Promise<boolean> {
  return retryOnConflict(async () => {
    const raw = await store.get(key);
    if (raw === undefined) return false;
    const record = JSON.parse(dec.decode(raw)) as LegacySettings;
    const embedded = record.llm?.apiKey;
    if (typeof embedded !== "string") return false;
    const { apiKey: _moved, ...llm } = record.llm;
    const tenant = key.slice(SETTINGS_RANGE.gte.length);
    await store.write(
      [
        { type: "put", key: apiKeyKey(tenant), value: Buffer.from(embedded, "base64") },
        { type: "put", key, value: enc.encode(JSON.stringify({ ...record, llm })) },
      ],
      [{ key, value: raw }],
    );
    return true;
  });
}

/** Runs the migration over every tenant's settings; safe to repeat (a moved record has nothing left to move). */
export async function migrateSettingsApiKeys(store: KvStore): Promise<number> {
  let moved = 0;
  let cursor: string | undefined;
  for (;;) {
    const keys: string[] = [];
    const range = cursor === undefined ? { gte: SETTINGS_RANGE.gte } : { gt: cursor };
    for await (const [key] of store.scan({ ...range, lt: SETTINGS_RANGE.lt, limit: PAGE })) keys.push(key);
    for (const key of keys) if (await migrateOne(store, key)) moved++;
    if (keys.length < PAGE) return moved;
    cursor = keys[keys.length - 1];
  }
}
