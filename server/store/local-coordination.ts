// Watches, locks and ephemeral keys for stores one process owns alone (LevelDB, memory): in-process is store-wide.
import type { KvChange, KvEphemeral, KvGuard, KvOp, KvStore, KvWatchHandlers } from "./kv.js";

/** Watchers of key prefixes, told of every applied write. */
export class LocalWatchers {
  private readonly watchers = new Set<{ prefix: string; handlers: KvWatchHandlers }>();

  watch(prefix: string, handlers: KvWatchHandlers): () => void {
    const entry = { prefix, handlers };
    this.watchers.add(entry);
    return () => this.watchers.delete(entry);
  }

  /** Called after ops were applied (durably), in their order. */
  notify(ops: readonly KvOp[]): void {
    if (this.watchers.size === 0) return;
    for (const op of ops) {
      const change: KvChange = { key: op.key, value: op.type === "put" ? op.value : undefined };
      for (const w of this.watchers) {
        if (!op.key.startsWith(w.prefix)) continue;
        try {
          w.handlers.onChange(change);
        } catch {
          // A watcher's failure is its own; the write has landed either way.
        }
      }
    }
  }
}

/** Named mutexes: one holder at a time per name within this process. */
export class LocalLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => {});
    this.tails.set(name, tail);
    void tail.then(() => {
      if (this.tails.get(name) === tail) this.tails.delete(name);
    });
    return run;
  }
}

/** An ephemeral key on a store owned by one process: written now, deleted at close (or at the next start's cleanup). */
export async function putLocalEphemeral(store: Pick<KvStore, "write">, key: string, value: Uint8Array): Promise<KvEphemeral> {
  await store.write([{ type: "put", key, value }]);
  let closed = false;
  return {
    async close() {
      if (closed) return;
      closed = true;
      await store.write([{ type: "del", key }]);
    },
  };
}

/**
 * The watch, lock and ephemeral-key part of the contract for a store one process owns alone:
 * a backend extends it and calls `notify` once a write has been applied.
 */
export abstract class LocallyCoordinatedStore {
  private readonly watchers = new LocalWatchers();
  private readonly locks = new LocalLocks();

  abstract write(ops: readonly KvOp[], guards?: readonly KvGuard[]): Promise<void>;

  watch(prefix: string, handlers: KvWatchHandlers): () => void {
    return this.watchers.watch(prefix, handlers);
  }

  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.withLock(name, fn);
  }

  putEphemeral(key: string, value: Uint8Array): Promise<KvEphemeral> {
    return putLocalEphemeral(this, key, value);
  }

  protected notify(ops: readonly KvOp[]): void {
    this.watchers.notify(ops);
  }
}
