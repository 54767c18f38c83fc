// The keyring: key generations wrapped by the master key, and per-tenant keys derived from them.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import type { KvStore } from "../store/kv.js";
import { fail, VeilError } from "../domain/errors.js";
import { openBlob, sealBlob } from "./blob.js";

const KEYRING_KEY = "sys\0keyring";
const enc = new TextEncoder();

interface StoredGeneration {
  id: number;
  wrapped: string;
  createdAt: string;
  retired?: boolean;
}

interface StoredKeyring {
  format: 1;
  /** HMAC of a fixed label under the master key: tells a wrong master key apart from corruption. */
  check: string;
  active: number;
  generations: StoredGeneration[];
}

/** What a caller needs to seal under the active generation. */
export interface TenantKey {
  generation: number;
  key: Uint8Array;
}

/**
 * Holds the unwrapped generation keys in memory and derives per-tenant keys
 * from them with HKDF-SHA256 (cached: one derivation costs ~12 us).
 */
export class Keyring {
  private readonly derived = new Map<string, Uint8Array>();

  private constructor(
    private readonly store: KvStore,
    private masterKey: Uint8Array,
    private state: StoredKeyring,
    private readonly generationKeys: Map<number, Uint8Array>,
  ) {}

  /**
   * Loads the keyring of a data dir, creating generation 1 on first use.
   * A master key that does not match the data dir is refused with a clear message.
   */
  static async open(store: KvStore, masterKey: Uint8Array): Promise<Keyring> {
    if (masterKey.length !== 32) throw fail.invalid("master key: must be 32 bytes");
    const raw = await store.get(KEYRING_KEY);
    if (raw === undefined) {
      const key = randomBytes(32);
      const state: StoredKeyring = {
        format: 1,
        check: keyCheck(masterKey),
        active: 1,
        generations: [wrapGeneration(masterKey, 1, key)],
      };
      await store.write([{ type: "put", key: KEYRING_KEY, value: enc.encode(JSON.stringify(state)) }]);
      return new Keyring(store, masterKey, state, new Map([[1, key]]));
    }
    const state = JSON.parse(Buffer.from(raw).toString("utf8")) as StoredKeyring;
    if (!safeEqual(state.check, keyCheck(masterKey))) {
      throw new VeilError(
        "failed_precondition",
        "master key does not match this data dir (key check failed): start with the key this data dir was created with",
      );
    }
    const keys = new Map<number, Uint8Array>();
    for (const g of state.generations) keys.set(g.id, unwrapGeneration(masterKey, g));
    return new Keyring(store, masterKey, state, keys);
  }

  /** The generation new writes use. */
  get activeGeneration(): number {
    return this.state.active;
  }

  /** Every generation still held, oldest first. */
  get generations(): number[] {
    return this.state.generations.map((g) => g.id);
  }

  /** The key a tenant seals with now. */
  activeKey(tenant: string): TenantKey {
    return { generation: this.state.active, key: this.tenantKey(tenant, this.state.active) };
  }

  /** The key of a tenant under a given generation; a missing generation is DATA_LOSS. */
  tenantKey(tenant: string, generation: number): Uint8Array {
    const cacheKey = `${generation}\0${tenant}`;
    let key = this.derived.get(cacheKey);
    if (key === undefined) {
      const base = this.generationKeys.get(generation);
      if (base === undefined) throw fail.dataLoss(`key generation ${generation} is not in the keyring`);
      key = new Uint8Array(hkdfSync("sha256", base, enc.encode("veil/v1"), enc.encode(`tenant:${tenant}`), 32));
      this.derived.set(cacheKey, key);
    }
    return key;
  }

  /** Seals a value for a tenant under the active generation. */
  seal(tenant: string, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const { generation, key } = this.activeKey(tenant);
    return sealBlob(key, generation, plaintext, aad);
  }

  /** Opens a tenant's blob under whichever generation it names. */
  open(tenant: string, blob: Uint8Array, aad: Uint8Array): Uint8Array {
    const generation = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).readUInt32BE(1);
    return openBlob(this.tenantKey(tenant, generation), blob, aad);
  }

  /** Adds a new random generation and makes it active for new writes. */
  async addGeneration(): Promise<number> {
    const id = Math.max(...this.generations) + 1;
    const key = randomBytes(32);
    const next: StoredKeyring = {
      ...this.state,
      active: id,
      generations: [...this.state.generations, wrapGeneration(this.masterKey, id, key)],
    };
    await this.persist(next);
    this.generationKeys.set(id, key);
    return id;
  }

  /** Drops old generations once nothing is sealed under them any more. */
  async retireGenerationsBefore(generation: number): Promise<void> {
    const next: StoredKeyring = { ...this.state, generations: this.state.generations.filter((g) => g.id >= generation) };
    await this.persist(next);
    for (const id of this.generationKeys.keys()) if (id < generation) this.generationKeys.delete(id);
    for (const k of this.derived.keys()) if (Number(k.split("\0")[0]) < generation) this.derived.delete(k);
  }

  /** Replaces the master key: only the wrapping of the generations changes. */
  async rekey(newMasterKey: Uint8Array): Promise<void> {
    const next: StoredKeyring = {
      ...this.state,
      check: keyCheck(newMasterKey),
      generations: this.state.generations.map((g) => wrapGeneration(newMasterKey, g.id, this.generationKeys.get(g.id)!, g.createdAt)),
    };
    await this.persist(next);
    this.masterKey = newMasterKey;
  }

  private async persist(next: StoredKeyring) {
    const current = await this.store.get(KEYRING_KEY);
    await this.store.write(
      [{ type: "put", key: KEYRING_KEY, value: enc.encode(JSON.stringify(next)) }],
      [{ key: KEYRING_KEY, value: current }],
    );
    this.state = next;
  }
}

function keyCheck(masterKey: Uint8Array): string {
  return createHmac("sha256", masterKey).update("veil/v1 master key check").digest("base64");
}

function wrappingKey(masterKey: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", masterKey, enc.encode("veil/v1"), enc.encode("keyring-wrap"), 32));
}

function wrapGeneration(masterKey: Uint8Array, id: number, key: Uint8Array, createdAt = new Date().toISOString()): StoredGeneration {
  const blob = sealBlob(wrappingKey(masterKey), id, key, enc.encode(`veil/v1 keyring generation ${id}`));
  return { id, wrapped: Buffer.from(blob).toString("base64"), createdAt };
}

function unwrapGeneration(masterKey: Uint8Array, g: StoredGeneration): Uint8Array {
  return openBlob(wrappingKey(masterKey), Buffer.from(g.wrapped, "base64"), enc.encode(`veil/v1 keyring generation ${g.id}`));
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
