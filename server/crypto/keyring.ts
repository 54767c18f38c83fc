// The keyring: key generations wrapped by the master key, per-tenant keys derived from them, kept coherent across servers.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { type KvStore, KvConflictError, retryOnConflict, sameBytes } from "../store/kv.js";
import { fail, VeilError } from "../errors.js";
import { blobGeneration, openBlob, sealBlob } from "./blob.js";

/** Where the keyring lives in the store (watched: another server may change it). */
export const KEYRING_KEY = "sys\0keyring";
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

/** Where the keyring reports what it cannot fix itself (another server's rekey). */
export type KeyringLog = (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

const MISMATCH =
  "master key does not match this store (key check failed): start with the key this data dir (or etcd prefix) was created with";

/**
 * Holds the unwrapped generation keys in memory and derives per-tenant keys
 * from them with HKDF-SHA256 (cached: one derivation costs ~12 us). On a store shared
 * by several servers it watches its own key, so a generation another server adds (or
 * retires) is picked up within the store's watch delay.
 */
export class Keyring {
  private readonly derived = new Map<string, Uint8Array>();
  private readonly generationKeys = new Map<number, Uint8Array>();
  private state: StoredKeyring;
  /** The stored bytes `state` came from (or this process last wrote): a watch event carrying them is our own. */
  private raw: Uint8Array;
  private reloading: Promise<void> | undefined;
  private unwatch: (() => void) | undefined;
  /** Date.now() when this process learned of the current active generation (0: at open). */
  private activeChangedAt = 0;

  private constructor(
    private readonly store: KvStore,
    private masterKey: Uint8Array,
    raw: Uint8Array,
    private readonly log: KeyringLog,
  ) {
    this.raw = raw;
    this.state = parse(raw);
    if (!safeEqual(this.state.check, keyCheck(masterKey))) throw new VeilError("failed_precondition", MISMATCH);
    this.adopt(raw, this.state);
  }

  /**
   * Loads the keyring of a data dir, creating generation 1 on first use (guarded: of two
   * servers starting on one empty store, one creates it and the other loads it).
   * A master key that does not match the data dir is refused with a clear message.
   */
  static async open(store: KvStore, masterKey: Uint8Array, options: { log?: KeyringLog; watch?: boolean } = {}): Promise<Keyring> {
    if (masterKey.length !== 32) throw fail.invalid("master key: must be 32 bytes");
    let raw = await store.get(KEYRING_KEY);
    if (raw === undefined) {
      const fresh = enc.encode(JSON.stringify(newKeyring(masterKey)));
      try {
        await store.write([{ type: "put", key: KEYRING_KEY, value: fresh }], [{ key: KEYRING_KEY, value: undefined }]);
        raw = fresh;
      } catch (error) {
        if (!(error instanceof KvConflictError)) throw error;
        raw = (await store.get(KEYRING_KEY))!;
      }
    }
    const keyring = new Keyring(store, masterKey, raw, options.log ?? (() => {}));
    if (options.watch !== false) keyring.startWatching();
    return keyring;
  }

  /** The generation new writes use. */
  get activeGeneration(): number {
    return this.state.active;
  }

  /** Every generation still held, oldest first. */
  get generations(): number[] {
    return this.state.generations.map((g) => g.id);
  }

  /** When this process learned of the active generation (Date.now(); 0 if it was already active at open). */
  get activeSince(): number {
    return this.activeChangedAt;
  }

  /** Whether this process holds the key of a generation. */
  hasGeneration(generation: number): boolean {
    return this.generationKeys.has(generation);
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

  /** Seals a value for a tenant under the active generation (callers: the barrier and sealed tokens). */
  seal(tenant: string, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const { generation, key } = this.activeKey(tenant);
    return sealBlob(key, generation, plaintext, aad);
  }

  /** Opens a tenant's blob under whichever generation it names. */
  open(tenant: string, blob: Uint8Array, aad: Uint8Array): Uint8Array {
    return openBlob(this.tenantKey(tenant, blobGeneration(blob)), blob, aad);
  }

  /**
   * Re-reads the keyring from the store (concurrent calls share one read). A keyring wrapped
   * under another master key (another server ran rekey) is logged and left alone: the keys
   * this process holds keep working, it only cannot learn new generations until restarted.
   */
  reload(): Promise<void> {
    this.reloading ??= (async () => {
      try {
        const raw = await this.store.get(KEYRING_KEY);
        if (raw !== undefined) this.apply(raw);
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  /** Adds a new random generation and makes it active for new writes. */
  async addGeneration(): Promise<number> {
    const next = await this.mutate((state) => {
      const id = Math.max(...state.generations.map((g) => g.id)) + 1;
      return { ...state, active: id, generations: [...state.generations, wrapGeneration(this.masterKey, id, randomBytes(32))] };
    });
    return next.active;
  }

  /** Drops old generations once nothing is sealed under them any more. */
  async retireGenerationsBefore(generation: number): Promise<void> {
    await this.mutate((state) => ({ ...state, generations: state.generations.filter((g) => g.id >= generation) }));
  }

  /** Replaces the master key: only the wrapping of the generations changes. */
  async rekey(newMasterKey: Uint8Array): Promise<void> {
    await this.mutate(
      (state) => ({
        ...state,
        check: keyCheck(newMasterKey),
        generations: state.generations.map((g) => wrapGeneration(newMasterKey, g.id, this.generationKeys.get(g.id)!, g.createdAt)),
      }),
      newMasterKey,
    );
  }

  /** Stops watching the store (server shutdown). */
  close(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  private startWatching() {
    this.unwatch = this.store.watch(KEYRING_KEY, {
      onChange: (change) => {
        if (change.key !== KEYRING_KEY || change.value === undefined || sameBytes(change.value, this.raw)) return;
        this.applySafely(change.value);
      },
      // Changes may have been missed while the watch was down: read the keyring again once it is back.
      onReset: (live) => {
        if (live) this.reload().catch((error: unknown) => this.log("warn", "keyring: reload after a watch reset failed", { error: String(error) }));
      },
    });
  }

  private applySafely(raw: Uint8Array) {
    try {
      this.apply(raw);
    } catch (error) {
      this.log("error", "keyring: cannot load the keyring another server wrote", { error: error instanceof Error ? error.message : String(error) });
    }
  }

  /** Adopts a stored keyring if it is wrapped under our master key; otherwise says so and keeps what we hold. */
  private apply(raw: Uint8Array) {
    if (sameBytes(raw, this.raw)) return;
    const state = parse(raw);
    if (!safeEqual(state.check, keyCheck(this.masterKey))) {
      this.log(
        "error",
        "keyring: the stored keyring is wrapped under another master key (did another server run `veil keys rekey`?); " +
          "this server keeps serving with the generations it holds but cannot load new ones: restart it with the new master key",
        { generations: state.generations.map((g) => g.id), active: state.active },
      );
      return;
    }
    this.adopt(raw, state);
  }

  /** Makes `state` current: unwraps generations new to us, forgets retired ones. */
  private adopt(raw: Uint8Array, state: StoredKeyring, masterKey = this.masterKey) {
    const keys = new Map<number, Uint8Array>();
    for (const g of state.generations) keys.set(g.id, this.generationKeys.get(g.id) ?? unwrapGeneration(masterKey, g));
    if (this.generationKeys.size > 0 && state.active !== this.state.active) this.activeChangedAt = Date.now();
    this.generationKeys.clear();
    for (const [id, key] of keys) this.generationKeys.set(id, key);
    for (const k of this.derived.keys()) if (!keys.has(Number(k.split("\0")[0]))) this.derived.delete(k);
    this.state = state;
    this.raw = raw;
  }

  /**
   * Changes the stored keyring from what the store holds now (not from memory: another server
   * may have changed it), guarded on those exact bytes; a concurrent change re-reads and retries.
   */
  private async mutate(change: (state: StoredKeyring) => StoredKeyring, newMasterKey?: Uint8Array): Promise<StoredKeyring> {
    return retryOnConflict(async () => {
      const current = await this.store.get(KEYRING_KEY);
      if (current === undefined) throw fail.dataLoss("the keyring is missing from the store");
      this.apply(current);
      if (!sameBytes(current, this.raw)) throw new VeilError("failed_precondition", `keyring: ${MISMATCH}`);
      const next = change(this.state);
      const bytes = enc.encode(JSON.stringify(next));
      const before = this.raw;
      // Set first, so our own watch event (delivered inside the write by local stores) is recognised as ours.
      this.raw = bytes;
      try {
        await this.store.write([{ type: "put", key: KEYRING_KEY, value: bytes }], [{ key: KEYRING_KEY, value: current }]);
      } catch (error) {
        if (this.raw === bytes) this.raw = before;
        throw error;
      }
      if (newMasterKey !== undefined) this.masterKey = newMasterKey;
      this.adopt(bytes, next);
      return next;
    });
  }
}

function parse(raw: Uint8Array): StoredKeyring {
  try {
    return JSON.parse(Buffer.from(raw).toString("utf8")) as StoredKeyring;
  } catch (cause) {
    throw fail.dataLoss("the stored keyring is not readable", cause);
  }
}

function newKeyring(masterKey: Uint8Array): StoredKeyring {
  return { format: 1, check: keyCheck(masterKey), active: 1, generations: [wrapGeneration(masterKey, 1, randomBytes(32))] };
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
