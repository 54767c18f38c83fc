// Where sealed values live and what each is bound to: the store paths the crypto barrier seals, with their associated data.

const enc = new TextEncoder();

/** Prefix of every version's ciphertext. */
export const VALUE_PREFIX = "val\0";

/** Key of one version's ciphertext; zero-padded so versions sort numerically. */
export function valueKey(tenant: string, session: string, name: string, version: number): string {
  return `${VALUE_PREFIX}${tenant}\0${session}\0${name}\0${String(version).padStart(12, "0")}`;
}

/** Key range of every stored value of every tenant (for re-encryption). */
export const VALUE_RANGE = { gte: "val\0", lt: "val\u0001" } as const;

/** Parses a value key back into its parts. */
export function parseValueKey(key: string): { tenant: string; session: string; name: string; version: number } {
  const [, tenant = "", session = "", name = "", version = "0"] = key.split("\0");
  return { tenant, session, name, version: Number(version) };
}

/**
 * Associated data binds a ciphertext to its place: copied to another tenant,
 * session, name or version it fails to open.
 */
export function valueAad(tenant: string, session: string, name: string, version: number): Uint8Array {
  return enc.encode(`veil/v1 secret\0${tenant}\0${session}\0${name}\0${version}`);
}

/** Prefix of every tenant's sealed API key. */
export const API_KEY_PREFIX = "cfgkey\0";

/** Where a tenant's sealed API key lives. */
export const apiKeyKey = (tenant: string) => `${API_KEY_PREFIX}${tenant}`;

/** Binds the API key blob to its tenant and field. */
export const settingsAad = (tenant: string) => enc.encode(`veil/v1 settings\0${tenant}\0llm.api_key`);
