// An in-memory KvStore for tests: the same contract as LevelDB and etcd (guards, limits, watches), nothing on disk.
import { checkWriteLimits, type KvGuard, type KvLimits, type KvOp, type KvRange, type KvSnapshot, type KvStore, type KvWatchHandlers, KvConflictError, sameBytes } from "./kv.js";
import { LocalLocks, LocalWatchers, putLocalEphemeral } from "./local-coordination.js";

/** Limits of the memory store unless a test gives others (etcd's, to exercise batching). */
export const MEMORY_LIMITS: KvLimits = { maxOps: 100_000, maxGuards: 100_000, maxBytes: 256 * 1024 * 1024 };

/** Opens an empty memory store. Several apps in one process may share one, like servers sharing etcd. */
export function openMemoryStore(options: { limits?: KvLimits } = {}): KvStore {
  return new MemoryStore(options.limits ?? MEMORY_LIMITS);
}

/** UTF-8 byte order, as LevelDB and etcd compare keys (JS string order differs past U+FFFF). */
const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

function inRange(key: string, range: KvRange): boolean {
  if (range.gt !== undefined && !(byUtf8(key, range.gt) > 0)) return false;
  if (range.gte !== undefined && !(byUtf8(key, range.gte) >= 0)) return false;
  if (range.lt !== undefined && !(byUtf8(key, range.lt) < 0)) return false;
  return true;
}

class MemoryStore implements KvStore {
  private readonly data = new Map<string, Uint8Array>();
  private readonly watchers = new LocalWatchers();
  private readonly locks = new LocalLocks();
  private closed = false;

  constructor(readonly limits: KvLimits) {}

  async get(key: string) {
    this.assertOpen();
    return this.data.get(key);
  }

  async getMany(keys: readonly string[]) {
    this.assertOpen();
    return keys.map((k) => this.data.get(k));
  }

  async write(ops: readonly KvOp[], guards: readonly KvGuard[] = []): Promise<void> {
    this.assertOpen();
    checkWriteLimits(this.limits, ops, guards);
    // Checked and applied in one synchronous step: nothing can interleave, like a transaction.
    for (const g of guards) if (!sameBytes(this.data.get(g.key), g.value)) throw new KvConflictError("a guarded key changed");
    for (const op of ops) {
      if (op.type === "put") this.data.set(op.key, new Uint8Array(op.value));
      else this.data.delete(op.key);
    }
    this.watchers.notify(ops);
  }

  async *scan(range: KvRange): AsyncIterable<[string, Uint8Array]> {
    this.assertOpen();
    const keys = [...this.data.keys()].filter((k) => inRange(k, range)).sort(byUtf8);
    if (range.reverse === true) keys.reverse();
    const limited = range.limit !== undefined && range.limit >= 0 ? keys.slice(0, range.limit) : keys;
    // Values are copied out at scan time: a later write does not change what this scan yields.
    const entries = limited.map((k) => [k, this.data.get(k)!] as [string, Uint8Array]);
    for (const entry of entries) yield entry;
  }

  watch(prefix: string, handlers: KvWatchHandlers) {
    return this.watchers.watch(prefix, handlers);
  }

  withLock<T>(name: string, fn: () => Promise<T>) {
    return this.locks.withLock(name, fn);
  }

  putEphemeral(key: string, value: Uint8Array) {
    return putLocalEphemeral(this, key, value);
  }

  async snapshot(): Promise<KvSnapshot> {
    const entries = [...this.data.entries()].sort(([a], [b]) => byUtf8(a, b));
    return {
      count: async () => entries.length,
      async *entries() {
        yield* entries;
      },
      close: async () => {},
    };
  }

  async close() {
    this.closed = true;
  }

  private assertOpen() {
    if (this.closed) throw new Error("memory store: closed");
  }
}
