// The values a single-writer store read last, kept exact: every write passes the writer, which tells the cache.

/** What the cache answers for a key it does not hold. */
export const MISS = Symbol("miss");

/** A read sent to the database: its keys, and those a write changed while it was out (their answers may be old). */
export interface ReadInFlight {
  readonly keys: readonly string[];
  changed?: Set<string>;
}

/** Bounds; entries beyond them go oldest first. */
export interface ReadCacheLimits {
  maxEntries: number;
  maxBytes: number;
  /** Values larger than this are never kept. */
  maxValueBytes: number;
}

/**
 * Why: a GetSecret reads the same two keys (record, ciphertext) as every other read of that
 * secret, and a native LevelDB read of them was the largest single cost of the call
 * (bench/README.md, "GetSecret"). The cache holds exactly what the store holds, as the store
 * holds it (ciphertext), and only for a store one process writes alone:
 * - a write's keys leave the cache once it is applied, before its caller hears of it;
 * - an answer read while a write to the same key landed is not kept (it may predate the write);
 * - a failed write drops its keys too, since a failed sync cannot say what reached the disk.
 * Absent keys are kept as absent (a session lookup that falls back to the tenant reads one).
 */
export class ReadCache {
  private readonly entries = new Map<string, Uint8Array | undefined>();
  private readonly inFlight = new Set<ReadInFlight>();
  private bytes = 0;

  constructor(private readonly limits: ReadCacheLimits) {}

  /** The kept value (undefined: known absent), or MISS. */
  lookup(key: string): Uint8Array | undefined | typeof MISS {
    const value = this.entries.get(key);
    if (value !== undefined || this.entries.has(key)) return value;
    return MISS;
  }

  /**
   * Every key's value, or undefined if any key is not held: one read is one instant of the store,
   * so a read the cache answers only in part goes to the database whole.
   */
  lookupAll(keys: readonly string[]): (Uint8Array | undefined)[] | undefined {
    const values: (Uint8Array | undefined)[] = [];
    for (const key of keys) {
      const value = this.lookup(key);
      if (value === MISS) return undefined;
      values.push(value);
    }
    return values;
  }

  /** Registers a read about to be sent to the database. */
  begin(keys: readonly string[]): ReadInFlight {
    const read: ReadInFlight = { keys };
    this.inFlight.add(read);
    return read;
  }

  /** The database answered `read`: keeps each answer no write overtook. */
  answered(read: ReadInFlight, values: readonly (Uint8Array | undefined)[]): void {
    this.inFlight.delete(read);
    for (let i = 0; i < read.keys.length; i++) {
      const key = read.keys[i]!;
      if (read.changed?.has(key) !== true) this.keep(key, values[i]);
    }
  }

  /** The database failed `read`: nothing to keep. */
  failed(read: ReadInFlight): void {
    this.inFlight.delete(read);
  }

  /** A write to `keys` was applied (or failed, and may have been): they leave the cache, and reads out now keep none of them. */
  written(keys: Iterable<string>): void {
    for (const key of keys) {
      this.forget(key);
      for (const read of this.inFlight) {
        if (!read.keys.includes(key)) continue;
        read.changed ??= new Set();
        read.changed.add(key);
      }
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private keep(key: string, value: Uint8Array | undefined): void {
    const size = value?.byteLength ?? 0;
    if (size > this.limits.maxValueBytes) return;
    this.forget(key);
    this.entries.set(key, value);
    this.bytes += size + key.length;
    while (this.entries.size > this.limits.maxEntries || this.bytes > this.limits.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.forget(oldest.value);
    }
  }

  private forget(key: string): void {
    if (!this.entries.has(key)) return;
    this.bytes -= (this.entries.get(key)?.byteLength ?? 0) + key.length;
    this.entries.delete(key);
  }
}
