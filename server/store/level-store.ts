// LevelDB implementation of KvStore with group commit: concurrent writes share one synced batch.
import { readdir, stat, statfs } from "node:fs/promises";
import { join } from "node:path";
import { Level } from "level";
import { VeilError } from "../errors.js";
import { checkWriteLimits, type KvGuard, type KvLimits, type KvOp, type KvRange, type KvSnapshot, type KvStore, KvConflictError, sameBytes } from "./kv.js";
import { LocallyCoordinatedStore } from "./local-coordination.js";
import { type ReadCacheLimits, ReadCache } from "./read-cache.js";

interface PendingWrite {
  ops: readonly KvOp[];
  guards: readonly KvGuard[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** What a store may report as it works (metrics). */
export interface LevelStoreOptions {
  /** Called for each synced batch with how many writes it grouped. */
  onBatch?: (writes: number) => void;
  /** Bounds of the read cache (default READ_CACHE_LIMITS). */
  readCache?: ReadCacheLimits;
}

/** Enough for every record and ciphertext of a large tenant; a value over 64 KiB is read from LevelDB each time. */
export const READ_CACHE_LIMITS: ReadCacheLimits = { maxEntries: 20_000, maxBytes: 32 * 1024 * 1024, maxValueBytes: 64 * 1024 };

/** Opens (creating if needed) a LevelDB store in `dir`. */
export async function openLevelStore(dir: string, options: LevelStoreOptions = {}): Promise<KvStore> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
  await db.open();
  return new LevelStore(db, dir, new ReadCache(options.readCache ?? READ_CACHE_LIMITS), options.onBatch);
}

/** Every message of an error and its causes, so a wrapped I/O error is still recognised. */
function messagesOf(error: unknown): string {
  const parts: string[] = [];
  for (let e = error, n = 0; e instanceof Error && n < 5; e = e.cause, n++) parts.push(`${(e as { code?: string }).code ?? ""} ${e.message}`);
  return parts.join(" | ");
}

/**
 * LevelDB's I/O failures as domain errors with a message fit for the caller: what happened to
 * the store, never the path or the data. Other errors pass through unchanged.
 */
export function storeError(error: unknown): unknown {
  const text = messagesOf(error);
  if (/No space left on device|ENOSPC/.test(text)) return new VeilError("resource_exhausted", "store: no space left on device; the write was not applied", { cause: error });
  if (/Disk quota exceeded|EDQUOT/.test(text)) return new VeilError("resource_exhausted", "store: disk quota exceeded; the write was not applied", { cause: error });
  if (/LEVEL_IO_ERROR|IO error/.test(text)) return new VeilError("unavailable", "store: I/O error; the write was not applied", { cause: error });
  if (/LEVEL_DATABASE_NOT_OPEN|LEVEL_ITERATOR_NOT_OPEN/.test(text)) return new VeilError("unavailable", "store: reopening after a failed write; retry", { cause: error });
  return error;
}

/**
 * LevelDB itself bounds a batch only by memory; these keep one write well inside what a
 * synced batch handles quickly, and far above what any single request can carry.
 */
export const LEVEL_LIMITS: KvLimits = { maxOps: 100_000, maxGuards: 100_000, maxBytes: 256 * 1024 * 1024 };

/** How long a batch may wait to fill, and how full it may get (gather). */
const GATHER = { maxMs: 2, maxWrites: 512 };

/** Room a reopen needs: LevelDB turns the write-ahead logs into a table when it opens, plus slack. */
const REOPEN_SLACK_BYTES = 256 * 1024;

interface PendingRead {
  keys: readonly string[];
  resolve: (values: (Uint8Array | undefined)[]) => void;
  reject: (error: unknown) => void;
}

class LevelStore extends LocallyCoordinatedStore implements KvStore {
  private queue: PendingWrite[] = [];
  private flushing: Promise<void> | undefined;
  private reads: PendingRead[] = [];
  /**
   * Set when a write failed with an I/O error (a full disk): LevelDB then refuses every later
   * write, even once there is room again (a sticky background error), until it is reopened.
   */
  private broken: VeilError | undefined;
  private recovering: Promise<VeilError | undefined> | undefined;
  private closed = false;
  readonly limits = LEVEL_LIMITS;

  constructor(
    private readonly db: Level<string, Uint8Array>,
    private readonly dir: string,
    private readonly cache: ReadCache,
    private readonly onBatch?: (writes: number) => void,
  ) {
    super();
  }

  async get(key: string) {
    return (await this.getMany([key]))[0];
  }

  /**
   * Reads issued in the same turn of the event loop are answered together on setImmediate: from
   * the read cache where it holds every key of a read (server/store/read-cache.ts), the rest by one
   * native getMany, since each native round trip costs more than the lookups themselves when many
   * calls are in flight (~45 µs of the main thread for one key). setImmediate, not a microtask:
   * concurrent calls reach their reads at different microtask depths (each interceptor awaits), so
   * a microtask flush sent 1.01 keys per getMany under 32 GetSecrets in flight, setImmediate ~13
   * (bench/README.md, "GetSecret"). A cached read waits for the turn too: a loop of reads that all
   * hit would otherwise never yield to timers and I/O.
   */
  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      if (this.reads.push({ keys, resolve, reject }) === 1) setImmediate(() => void this.flushReads());
    });
  }

  private async flushReads() {
    const queued = this.reads;
    this.reads = [];
    const reads: PendingRead[] = [];
    for (const r of queued) {
      const known = this.cache.lookupAll(r.keys);
      if (known !== undefined) r.resolve(known);
      else reads.push(r);
    }
    if (reads.length === 0) return;
    // Reads keep working while LevelDB refuses writes; they only wait out a reopen.
    if (this.recovering !== undefined || this.db.status !== "open") await this.recover();
    const keys = reads.flatMap((r) => r.keys);
    const sent = this.cache.begin(keys);
    this.db.getMany(keys).then(
      (values) => {
        this.cache.answered(sent, values);
        let offset = 0;
        for (const r of reads) {
          r.resolve(values.slice(offset, offset + r.keys.length));
          offset += r.keys.length;
        }
      },
      (error: unknown) => {
        this.cache.failed(sent);
        for (const r of reads) r.reject(storeError(error));
      },
    );
  }

  write(ops: readonly KvOp[], guards: readonly KvGuard[] = []): Promise<void> {
    try {
      checkWriteLimits(this.limits, ops, guards);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, guards, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  async *scan(range: KvRange): AsyncIterable<[string, Uint8Array]> {
    const options: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(range)) if (v !== undefined) options[k] = v;
    if (this.recovering !== undefined || this.db.status !== "open") await this.recover();
    try {
      for await (const entry of this.db.iterator(options)) yield entry;
    } catch (error) {
      throw storeError(error);
    }
  }

  /** LevelDB's explicit snapshot: the count and the entries read the same instant of the store. */
  async snapshot(): Promise<KvSnapshot> {
    if (this.recovering !== undefined || this.db.status !== "open") await this.recover();
    const snapshot = this.db.snapshot();
    const db = this.db;
    return {
      async count() {
        let n = 0;
        try {
          for await (const _ of db.keys({ snapshot })) n++;
        } catch (error) {
          throw storeError(error);
        }
        return n;
      },
      async *entries() {
        try {
          for await (const entry of db.iterator({ snapshot })) yield entry;
        } catch (error) {
          throw storeError(error);
        }
      },
      close: () => snapshot.close(),
    };
  }

  async close() {
    this.closed = true;
    await this.flushing;
    await this.recovering;
    await this.db.close();
    this.cache.clear();
  }

  /**
   * Clears LevelDB's sticky write error by reopening it, once the disk has room for the reopen
   * (otherwise the reopen itself would fail and leave the store closed). One reopen at a time;
   * resolves to the error writes should still get, or undefined when writes work again.
   */
  private recover(): Promise<VeilError | undefined> {
    if (this.broken === undefined && this.db.status === "open") return Promise.resolve(undefined);
    // After close() nothing may open the database again (another process may own it by then).
    if (this.closed) return Promise.resolve(this.broken ?? new VeilError("unavailable", "store: closed"));
    this.recovering ??= (async () => {
      try {
        if (!(await this.roomToReopen())) return this.broken;
        if (this.db.status === "open") await this.db.close();
        await this.db.open();
        this.broken = undefined;
        return undefined;
      } catch (error) {
        const mapped = storeError(error);
        this.broken = mapped instanceof VeilError ? mapped : new VeilError("unavailable", "store: could not reopen after a failed write", { cause: error });
        return this.broken;
      } finally {
        this.recovering = undefined;
      }
    })();
    return this.recovering;
  }

  private async roomToReopen(): Promise<boolean> {
    const fs = await statfs(this.dir);
    let logs = 0;
    for (const name of await readdir(this.dir)) if (name.endsWith(".log")) logs += (await stat(join(this.dir, name))).size;
    return fs.bavail * fs.bsize >= logs + REOPEN_SLACK_BYTES;
  }

  /**
   * Lets a batch fill while writes keep arriving: waits turn by turn of the event loop until one
   * passes without a new write, at most GATHER.maxMs (or GATHER.maxWrites writes). Why: a synced
   * batch has a fixed CPU cost besides its writes (the log write, fdatasync, the thread pool's
   * wake-ups): measured alone, 21 µs of CPU per write in batches of 8 and 8 µs in batches of 32.
   * Under 32 GetSecrets in flight the batches that formed during one sync held ~10 audit events;
   * gathering cut the server's CPU per GetSecret by 15-21 % (bench/README.md). A lone write waits
   * one turn.
   */
  private async gather(): Promise<void> {
    const started = performance.now();
    let seen = 0;
    while (this.queue.length > seen && this.queue.length < GATHER.maxWrites && performance.now() - started < GATHER.maxMs) {
      seen = this.queue.length;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Group commit: a synced put costs ~0.25 ms here whatever its size, so every
   * write that arrives while one batch is syncing joins the next batch. Guards
   * are checked by this single writer against the disk plus the earlier writes
   * of the same batch, so the check and the write are atomic together.
   */
  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      await this.gather();
      const group = this.queue;
      this.queue = [];
      const refusal = await this.recover();
      if (refusal !== undefined) {
        for (const w of group) w.reject(refusal);
        continue;
      }
      const accepted: PendingWrite[] = [];
      const ops: KvOp[] = [];
      try {
        const overlay = new Map<string, Uint8Array | undefined>();
        const guardKeys = [...new Set(group.flatMap((w) => w.guards.map((g) => g.key)))];
        const values = await this.getMany(guardKeys);
        const current = new Map(guardKeys.map((k, i) => [k, values[i]]));
        for (const w of group) {
          const holds = w.guards.every((g) => sameBytes(overlay.has(g.key) ? overlay.get(g.key) : current.get(g.key), g.value));
          if (!holds) {
            w.reject(new KvConflictError("a guarded key changed"));
            continue;
          }
          for (const op of w.ops) overlay.set(op.key, op.type === "put" ? op.value : undefined);
          ops.push(...w.ops);
          accepted.push(w);
        }
        if (ops.length > 0) {
          // A chained batch skips the per-op cloning and encoding of the array form.
          const batch = this.db.batch();
          for (const op of ops) {
            if (op.type === "put") batch.put(op.key, op.value);
            else batch.del(op.key);
          }
          try {
            await batch.write({ sync: true });
          } finally {
            // Before any writer hears back; after a failure too, since a failed sync cannot say what reached the disk.
            this.cache.written(ops.map((op) => op.key));
          }
          this.onBatch?.(accepted.length);
          this.notify(ops);
        }
        for (const w of accepted) w.resolve();
      } catch (error) {
        // The whole batch failed, so none of its writes landed: all or nothing holds.
        const mapped = storeError(error);
        if (mapped instanceof VeilError) this.broken = mapped;
        for (const w of group) w.reject(mapped);
      }
    }
    this.flushing = undefined;
  }
}
