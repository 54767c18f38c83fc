// The crypto barrier: the one place stored values are sealed and opened, each bound to its store path.
import { API_KEY_PREFIX, VALUE_PREFIX, parseValueKey, settingsAad, valueAad } from "./sealed-paths.js";
import { VeilError } from "../errors.js";

import type { KvOp } from "../store/kv.js";
import { blobGeneration } from "./blob.js";
import type { Keyring } from "./keyring.js";

/** What a sealed path is bound to: the tenant whose key seals it, and the associated data. */
export interface PathBinding {
  tenant: string;
  aad: Uint8Array;
}

/**
 * A family of sealed store values: every value under `prefix` is one whole blob, bound to its
 * path. The associated data is what each family has always used, so data dirs written before
 * the barrier keep opening as they are.
 */
export interface SealedFamily {
  /** Used in logs and errors: "secret values", "settings API keys". */
  name: string;
  prefix: string;
  /** Tenant and associated data of a path under `prefix`. */
  bind(path: string): PathBinding;
}

/** Every family the barrier seals; rotation walks exactly these. */
export const SEALED_FAMILIES: readonly SealedFamily[] = [
  {
    name: "secret values",
    prefix: VALUE_PREFIX,
    bind(path) {
      const { tenant, session, name, version } = parseValueKey(path);
      return { tenant, aad: valueAad(tenant, session, name, version) };
    },
  },
  {
    name: "settings API keys",
    prefix: API_KEY_PREFIX,
    bind(path) {
      const tenant = path.slice(API_KEY_PREFIX.length);
      return { tenant, aad: settingsAad(tenant) };
    },
  },
];

/** The key range of a family, for scans. */
export function familyRange(family: SealedFamily): { gte: string; lt: string } {
  const last = family.prefix.charCodeAt(family.prefix.length - 1);
  return { gte: family.prefix, lt: family.prefix.slice(0, -1) + String.fromCharCode(last + 1) };
}

/** Creates the barrier over a keyring; `families` defaults to Veil's own (tests may add more). */
export function createBarrier(keyring: Keyring, families: readonly SealedFamily[] = SEALED_FAMILIES) {
  function familyOf(path: string): SealedFamily {
    const family = families.find((f) => path.startsWith(f.prefix));
    if (family === undefined) throw new VeilError("internal", `crypto barrier: ${path.split("\0")[0]} is not a sealed key family`);
    return family;
  }

  function seal(path: string, plaintext: Uint8Array): Uint8Array {
    const { tenant, aad } = familyOf(path).bind(path);
    return keyring.seal(tenant, plaintext, aad);
  }

  /** Opens a stored value; a generation this process lacks (another server just rotated) reloads the keyring once first. */
  async function open(path: string, blob: Uint8Array): Promise<Uint8Array> {
    const { tenant, aad } = familyOf(path).bind(path);
    if (!keyring.hasGeneration(blobGeneration(blob))) await keyring.reload();
    return keyring.open(tenant, blob, aad);
  }

  return {
    families,
    familyOf,
    seal,
    open,
    /** A put of `plaintext` sealed for `path`, to ride in the caller's atomic write. */
    sealOp(path: string, plaintext: Uint8Array): KvOp {
      return { type: "put", key: path, value: seal(path, plaintext) };
    },
    /** Re-seals a stored value under the active generation (rotation); the plaintext is wiped after. */
    async reseal(path: string, blob: Uint8Array): Promise<Uint8Array> {
      const plaintext = await open(path, blob);
      try {
        return seal(path, plaintext);
      } finally {
        plaintext.fill(0);
      }
    },
  };
}

/** The barrier's operations. */
export type Barrier = ReturnType<typeof createBarrier>;
