// The key-value store contract every backend (LevelDB, memory, etcd) implements and the domain persists through.
import { VeilError } from "../errors.js";

/** One mutation inside an atomic write. */
export type KvOp = { type: "put"; key: string; value: Uint8Array } | { type: "del"; key: string };

/**
 * A precondition on a write: the key must currently hold exactly `value`
 * (undefined = must be absent). This is the compare of a compare-and-swap, so
 * a distributed backend (etcd Txn) can give the same guarantee as LevelDB.
 */
export interface KvGuard {
  key: string;
  value: Uint8Array | undefined;
}

/** Bounds of an ordered scan; keys compare as UTF-8 strings. */
export interface KvRange {
  gt?: string;
  gte?: string;
  lt?: string;
  limit?: number;
  reverse?: boolean;
}

/** A write's guard did not hold: another writer got there first. Callers retry. */
export class KvConflictError extends Error {
  override readonly name = "KvConflictError";
}

/** The whole store as of one instant (raw bytes, for backups); close it when done. */
export interface KvSnapshot {
  /** How many entries the snapshot holds. */
  count(): Promise<number>;
  /** Every entry in key order, as of the snapshot, however many writes land meanwhile. */
  entries(): AsyncIterable<[key: string, value: Uint8Array]>;
  close(): Promise<void>;
}

/**
 * The most one atomic write may carry. A write beyond any limit is refused whole with
 * RESOURCE_EXHAUSTED (see checkWriteLimits), never split: callers that may exceed a limit
 * (large SetSecrets batches, rotation) check or batch against these numbers up front.
 */
export interface KvLimits {
  /** Puts and deletes in one write (etcd: --max-txn-ops, 128 by default). */
  maxOps: number;
  /** Guards in one write (etcd counts compares against the same --max-txn-ops). */
  maxGuards: number;
  /** Bytes of every key and value of the ops and guards of one write (etcd: --max-request-bytes less framing). */
  maxBytes: number;
}

/** One change seen by a watch: the new value, or undefined when the key was deleted. */
export interface KvChange {
  key: string;
  value: Uint8Array | undefined;
}

/** What a watch calls. */
export interface KvWatchHandlers {
  /** A key under the watched prefix changed (by this process or, on a shared store, any other). */
  onChange(change: KvChange): void;
  /**
   * Changes may have been missed (the watch reconnected, or is down): drop whatever was
   * cached from this prefix. Called again with `live: true` once changes flow again.
   */
  onReset?(live: boolean): void;
}

/** A key held while this process lives (a server's registration). */
export interface KvEphemeral {
  /** Deletes the key and stops keeping it alive. */
  close(): Promise<void>;
}

/** What the domain needs from storage. Writes are atomic and durable when they resolve. */
export interface KvStore {
  /** What one write may carry; stated by every backend. */
  readonly limits: KvLimits;
  get(key: string): Promise<Uint8Array | undefined>;
  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]>;
  /** Applies every op or none, after checking every guard; resolves once durable (synced, or quorum-committed). */
  write(ops: readonly KvOp[], guards?: readonly KvGuard[]): Promise<void>;
  scan(range: KvRange): AsyncIterable<[key: string, value: Uint8Array]>;
  /**
   * Reports every change under `prefix` from now on, until the returned function is called.
   * On a store shared by several servers, changes made by any of them arrive (etcd: a watch).
   */
  watch(prefix: string, handlers: KvWatchHandlers): () => void;
  /**
   * Runs `fn` while holding the store-wide lock `name`: at most one holder at a time across
   * every process sharing the store (etcd: a lease-held lock, released if the holder dies).
   */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Puts `key` for as long as this process lives and keeps it alive (etcd: attached to a
   * lease renewed in the background, gone within the lease TTL after a crash).
   */
  putEphemeral(key: string, value: Uint8Array): Promise<KvEphemeral>;
  /** A consistent point-in-time view of every entry (backends without one cannot be backed up online). */
  snapshot?(): Promise<KvSnapshot>;
  close(): Promise<void>;
}

/** The size of one write, as the limits count it. */
export function writeSize(ops: readonly KvOp[], guards: readonly KvGuard[] = []): { ops: number; guards: number; bytes: number } {
  let bytes = 0;
  for (const op of ops) bytes += Buffer.byteLength(op.key) + (op.type === "put" ? op.value.byteLength : 0);
  for (const g of guards) bytes += Buffer.byteLength(g.key) + (g.value?.byteLength ?? 0);
  return { ops: ops.length, guards: guards.length, bytes };
}

/**
 * Refuses a write beyond the store's limits with RESOURCE_EXHAUSTED naming the limit, before
 * anything is applied (all or nothing: nothing of it lands). `what` names the request part
 * ("secrets", "store write") the caller can shrink.
 */
export function checkWriteLimits(limits: KvLimits, ops: readonly KvOp[], guards: readonly KvGuard[] = [], what = "store write"): void {
  const size = writeSize(ops, guards);
  const over =
    size.ops > limits.maxOps
      ? `${size.ops} operations, the store commits at most ${limits.maxOps} at once`
      : size.guards > limits.maxGuards
        ? `${size.guards} checks, the store commits at most ${limits.maxGuards} at once`
        : size.bytes > limits.maxBytes
          ? `${size.bytes} bytes, the store commits at most ${limits.maxBytes} at once`
          : undefined;
  if (over !== undefined) throw new VeilError("resource_exhausted", `${what}: needs ${over} (atomically); nothing was written: send fewer or smaller items per call`);
}

/** Byte equality for guards. */
export function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.compare(a, b) === 0;
}

/**
 * Runs a read-then-guarded-write attempt until its guards hold: a conflict means another
 * writer got there first, so the attempt re-reads and tries again (bounded, never silent).
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>, maxAttempts = 1000): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof KvConflictError) || n >= maxAttempts) throw error;
    }
  }
}
