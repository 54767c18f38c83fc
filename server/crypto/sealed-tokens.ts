// Sealed tokens: opaque `veil:sealed:v1:` strings only this server can open, bound to a tenant and a purpose.
import { fail } from "../errors.js";
import { blobGeneration } from "./blob.js";
import type { Keyring } from "./keyring.js";

/** Every sealed token starts with this. */
export const SEALED_PREFIX = "veil:sealed:v1:";

/** The purpose of tokens meant for injection into conversations. */
export const INJECT_PURPOSE = "inject";

const enc = new TextEncoder();
const dec = new TextDecoder();

function aad(tenant: string, purpose: string): Uint8Array {
  return enc.encode(`veil/v1 sealed\0${tenant}\0${purpose}`);
}

/** Seals and opens tokens under the tenant's active key generation. */
export function createSealer(keyring: Keyring, now: () => number = () => Date.now()) {
  /**
   * Opens a token with the egress hosts it carries (none for tokens sealed without). A token
   * sealed by another server under a generation this one has not loaded yet reloads the keyring once.
   */
  async function openWithEgress(tenant: string, purpose: string, token: string, field: string): Promise<{ value: string } & SealedEgress> {
    const invalid = () => fail.invalid(`${field}: not a valid sealed token for this tenant`);
    if (!token.startsWith(SEALED_PREFIX)) throw invalid();
    try {
      const blob = Buffer.from(token.slice(SEALED_PREFIX.length), "base64url");
      if (!keyring.hasGeneration(blobGeneration(blob))) await keyring.reload();
      const payload = JSON.parse(dec.decode(keyring.open(tenant, blob, aad(tenant, purpose)))) as { v: string; e?: number; h?: string[]; b?: boolean };
      if (typeof payload.v !== "string" || (payload.e !== undefined && payload.e <= now())) throw invalid();
      return { value: payload.v, hosts: Array.isArray(payload.h) ? payload.h.filter((h) => typeof h === "string") : [], body: payload.b === true };
    } catch {
      throw invalid();
    }
  }

  return {
    openWithEgress,

    /**
     * Seals a value; with ttlSeconds the token stops opening after that long. With egress
     * hosts the token carries them (inside the ciphertext), so a conversation injects it as a
     * placeholder like the secret it came from.
     */
    seal(tenant: string, purpose: string, value: string, ttlSeconds = 0, egress?: SealedEgress): string {
      const hosts = egress !== undefined && egress.hosts.length > 0 ? { h: egress.hosts, ...(egress.body ? { b: true } : {}) } : {};
      const payload = JSON.stringify({ v: value, ...(ttlSeconds > 0 ? { e: now() + ttlSeconds * 1000 } : {}), ...hosts });
      const blob = keyring.seal(tenant, enc.encode(payload), aad(tenant, purpose));
      return SEALED_PREFIX + Buffer.from(blob).toString("base64url");
    },

    /**
     * Opens a token. Tampered, expired, another tenant's or another purpose's: all the
     * same INVALID_ARGUMENT, so the answer tells a prober nothing about why.
     */
    async open(tenant: string, purpose: string, token: string, field: string): Promise<string> {
      return (await openWithEgress(tenant, purpose, token, field)).value;
    },
  };
}

/** Egress hosts a sealed token carries: its value is then injected as a placeholder. */
export interface SealedEgress {
  hosts: string[];
  body: boolean;
}

/** The sealer's operations. */
export type Sealer = ReturnType<typeof createSealer>;
