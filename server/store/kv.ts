// The key-value store interface the domain persists through (LevelDB now, etcd later).

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

/** What the domain needs from storage. Writes are atomic and durable when they resolve. */
export interface KvStore {
  get(key: string): Promise<Uint8Array | undefined>;
  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]>;
  /** Applies every op or none, after checking every guard; resolves once synced to disk. */
  write(ops: readonly KvOp[], guards?: readonly KvGuard[]): Promise<void>;
  scan(range: KvRange): AsyncIterable<[key: string, value: Uint8Array]>;
  /** A consistent point-in-time view of every entry (backends without one cannot be backed up online). */
  snapshot?(): Promise<KvSnapshot>;
  close(): Promise<void>;
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
