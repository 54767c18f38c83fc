// Key rotation: adds a keyring generation and re-encrypts stored blobs to it online, in throttled guarded batches.
import { setImmediate as yieldToLoop, setTimeout as sleep } from "node:timers/promises";
import { type KvGuard, type KvOp, type KvStore, KvConflictError } from "../store/kv.js";
import { fail, VeilError } from "../domain/errors.js";
import type { Keyring } from "./keyring.js";
import { blobGeneration } from "./blob.js";
import { type Barrier, familyRange, type SealedFamily } from "./barrier.js";

/** Where rotation stands; counts are of sealed store values (each is one blob). */
export interface RotationStatus {
  activeGeneration: number;
  generations: number[];
  reencrypting: boolean;
  valuesMoved: number;
  valuesRemaining: number;
  rotatedAt?: string;
}

/** What rotation works on. */
export interface RotationDeps {
  store: KvStore;
  keyring: Keyring;
  /** Seals every family rotation walks: each sealed store value under its families is one blob. */
  barrier: Barrier;
  /** Stored values re-encrypted per second at most (default 5000), so rotation never starves live traffic. */
  ratePerSecond?: number;
  /**
   * How long after `rotate()` a pass must start before it may declare re-encryption done
   * (default 1000 ms): a write sealed under the old generation just before the switch can
   * still be on its way to disk, and a quick pass over a small store would miss it.
   */
  settleMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** Stored values per atomic guarded write. */
const BATCH = 128;
/** Stored values read per scan page: short scans keep no iterator (or snapshot) open for long. */
const PAGE = 512;
/** A batch that keeps conflicting is retried this often (re-read each time) before the run fails. */
const MAX_CONFLICT_RETRIES = 100;

/** Creates the rotation controller; call `resume()` at start so an interrupted rotation finishes. */
export function createRotation(deps: RotationDeps) {
  const { store, keyring, barrier } = deps;
  const rate = deps.ratePerSecond ?? 5000;
  const settleMs = deps.settleMs ?? 1000;
  const log = deps.log ?? (() => {});
  if (!(rate > 0)) throw fail.invalid("ratePerSecond: must be greater than 0");

  let valuesMoved = 0;
  let valuesRemaining = 0;
  let rotatedAt: string | undefined;
  /** Date.now() when the active generation last changed in this process (0: before start, nothing in flight). */
  let switchedAt = 0;

  let run: Promise<void> | undefined;
  let abort: AbortController | undefined;
  /** Set when a rotate() lands while a run is finishing, so the run goes round again instead of ending. */
  let rerun = false;
  let failure: unknown;

  /** Serializes rotate/resume/retire: two concurrent addGeneration calls would both pick the same id. */
  let lock: Promise<unknown> = Promise.resolve();
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = lock.then(fn, fn);
    lock = next.catch(() => {});
    return next;
  }

  function where(source: SealedFamily, key: string): string {
    return `${source.name} at ${key.replaceAll("\0", "/")}`;
  }

  function generationsOf(source: SealedFamily, key: string, value: Uint8Array): number[] {
    try {
      return [blobGeneration(value)];
    } catch (cause) {
      throw fail.dataLoss(`key rotation: cannot read the key generation of ${where(source, key)}`, cause);
    }
  }

  function isStale(source: SealedFamily, key: string, value: Uint8Array, active: number): boolean {
    return generationsOf(source, key, value).some((g) => g !== active);
  }

  /** Reads one page of a source, after `cursor`. */
  async function readPage(source: SealedFamily, cursor: string | undefined): Promise<[string, Uint8Array][]> {
    const page: [string, Uint8Array][] = [];
    const bounds = familyRange(source);
    const range = cursor === undefined ? { gte: bounds.gte } : { gt: cursor };
    for await (const entry of store.scan({ ...range, lt: bounds.lt, limit: PAGE })) page.push(entry);
    return page;
  }

  /** Walks every source page by page; each page is handed over before the next one is read. */
  async function* pages(signal?: AbortSignal): AsyncGenerator<[SealedFamily, [string, Uint8Array][]]> {
    for (const source of barrier.families) {
      let cursor: string | undefined;
      for (;;) {
        signal?.throwIfAborted();
        const page = await readPage(source, cursor);
        if (page.length === 0) break;
        yield [source, page];
        if (page.length < PAGE) break;
        cursor = page[page.length - 1]![0];
      }
    }
  }

  /**
   * The cheap pass: reads only blob headers. Counts stored values holding a blob
   * under an older generation, and refuses blobs under a generation the keyring
   * no longer has (their values could never be opened again).
   */
  async function countStale(signal?: AbortSignal): Promise<number> {
    const active = keyring.activeGeneration;
    const held = new Set(keyring.generations);
    const missing = new Map<number, number>();
    let stale = 0;
    for await (const [source, page] of pages(signal)) {
      for (const [key, value] of page) {
        const gens = generationsOf(source, key, value);
        for (const g of gens) if (!held.has(g)) missing.set(g, (missing.get(g) ?? 0) + 1);
        if (gens.some((g) => g !== active)) stale++;
      }
      await yieldToLoop();
    }
    if (missing.size > 0) {
      const list = [...missing].sort(([a], [b]) => a - b).map(([g, n]) => `generation ${g} (${n} blob${n === 1 ? "" : "s"})`);
      throw fail.precondition(
        `stored ciphertext is sealed under a key generation that is not in the keyring: ${list.join(", ")}; ` +
          `the keyring holds generations ${[...held].join(", ")}. Restore the keyring (or data dir) that still has it`,
      );
    }
    return stale;
  }

  /** Re-seals one batch with a guarded write; on conflict re-reads it and retries what still needs moving. */
  async function moveBatch(source: SealedFamily, batch: [string, Uint8Array][]): Promise<void> {
    let pending = batch;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const ops: KvOp[] = [];
      const guards: KvGuard[] = [];
      for (const [key, value] of pending) {
        let resealed: Uint8Array;
        try {
          resealed = await barrier.reseal(key, value);
        } catch (cause) {
          if (cause instanceof VeilError && cause.kind !== "data_loss") throw cause;
          throw fail.dataLoss(`key rotation: cannot re-encrypt ${where(source, key)}`, cause);
        }
        ops.push({ type: "put", key, value: resealed });
        // Guarding on the exact bytes read means a concurrent delete or rewrite wins: we never resurrect or clobber.
        guards.push({ key, value });
      }
      try {
        await store.write(ops, guards);
        valuesMoved += pending.length;
        valuesRemaining = Math.max(0, valuesRemaining - pending.length);
        return;
      } catch (error) {
        if (!(error instanceof KvConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
      const keys = pending.map(([key]) => key);
      const fresh = await store.getMany(keys);
      const active = keyring.activeGeneration;
      const next: [string, Uint8Array][] = [];
      for (const [i, key] of keys.entries()) {
        const value = fresh[i];
        if (value !== undefined && isStale(source, key, value, active)) next.push([key, value]);
        else valuesRemaining = Math.max(0, valuesRemaining - 1);
      }
      pending = next;
    }
  }

  /** One pass over every source, moving what is not on the active generation. */
  async function movePass(signal: AbortSignal): Promise<void> {
    for await (const [source, page] of pages(signal)) {
      const active = keyring.activeGeneration;
      const stale = page.filter(([key, value]) => isStale(source, key, value, active));
      for (let i = 0; i < stale.length; i += BATCH) {
        signal.throwIfAborted();
        const batch = stale.slice(i, i + BATCH);
        const started = Date.now();
        await moveBatch(source, batch);
        const budget = (batch.length * 1000) / rate - (Date.now() - started);
        if (budget > 0) await sleep(budget, undefined, { signal });
      }
      await yieldToLoop();
    }
  }

  /**
   * Passes until one finds nothing to move: a write sealed under the old generation
   * just before the switch may commit after a pass went by its key. No cursor is
   * persisted; after a restart a pass skips what is already on the active generation.
   */
  async function reencryptUntilClean(signal: AbortSignal, counted: number | undefined): Promise<void> {
    let passes = 0;
    for (;;) {
      const startedAt = Date.now();
      const stale = counted ?? (await countStale(signal));
      counted = undefined;
      valuesRemaining = stale;
      if (stale === 0) {
        const settled = switchedAt + settleMs;
        if (startedAt >= settled) {
          log("key rotation: re-encryption done", { generation: keyring.activeGeneration, valuesMoved, passes });
          return;
        }
        await sleep(settled - startedAt, undefined, { signal });
        continue;
      }
      passes++;
      await movePass(signal);
    }
  }

  async function runLoop(signal: AbortSignal, counted: number | undefined): Promise<void> {
    try {
      do {
        rerun = false;
        await reencryptUntilClean(signal, counted);
        counted = undefined;
      } while (rerun && !signal.aborted);
    } catch (error) {
      if (!signal.aborted) {
        failure = error;
        log("key rotation: re-encryption failed", { error: error instanceof Error ? error.message : String(error), valuesMoved, valuesRemaining });
      }
    } finally {
      // Same synchronous step as the last `rerun` check, so a rotate() either sees this run or starts a new one.
      run = undefined;
      abort = undefined;
    }
  }

  function start(counted: number | undefined) {
    if (run !== undefined) {
      rerun = true;
      return;
    }
    failure = undefined;
    rerun = false;
    const controller = new AbortController();
    abort = controller;
    run = runLoop(controller.signal, counted);
  }

  function status(): RotationStatus {
    return {
      activeGeneration: keyring.activeGeneration,
      generations: keyring.generations,
      reencrypting: run !== undefined,
      valuesMoved,
      valuesRemaining,
      ...(rotatedAt !== undefined ? { rotatedAt } : {}),
    };
  }

  return {
    /** Adds a generation (new writes use it at once) and starts re-encrypting in the background. */
    rotate(): Promise<RotationStatus> {
      return serial(async () => {
        const generation = await keyring.addGeneration();
        switchedAt = Date.now();
        rotatedAt = new Date(switchedAt).toISOString();
        valuesMoved = 0;
        log("key rotation: generation added", { generation });
        if (run !== undefined) {
          start(undefined);
          return status();
        }
        const stale = await countStale();
        valuesRemaining = stale;
        start(stale);
        return status();
      });
    },

    /**
     * Resumes re-encryption if any blob is still under an older generation (call at start:
     * makes rotation resumable after a crash). Throws failed_precondition naming the
     * generation if a stored blob needs one the keyring no longer has.
     */
    resume(): Promise<void> {
      return serial(async () => {
        if (run !== undefined) return;
        const stale = await countStale();
        valuesRemaining = stale;
        if (stale === 0) return;
        valuesMoved = 0;
        log("key rotation: resuming re-encryption", { generation: keyring.activeGeneration, valuesRemaining: stale });
        start(stale);
      });
    },

    /** Resolves when no re-encryption is running (rejects if the background run failed). */
    async idle(): Promise<void> {
      while (run !== undefined) await run;
      if (failure !== undefined) throw failure;
    },

    /**
     * Drops generations older than the active one, only after a verification pass finds
     * no blob under them; otherwise throws failed_precondition. Returns the dropped ones.
     */
    retireOld(): Promise<number[]> {
      return serial(async () => {
        if (run !== undefined) {
          throw fail.precondition(`key rotation: re-encryption is still running (${valuesRemaining} values remaining); retire once it is done`);
        }
        const wait = switchedAt + settleMs - Date.now();
        if (wait > 0) await sleep(wait);
        const active = keyring.activeGeneration;
        const stale = await countStale();
        if (stale > 0) {
          throw fail.precondition(
            `key rotation: ${stale} stored values still hold blobs under generations older than ${active}; ` +
              "run re-encryption (resume) before retiring them",
          );
        }
        const old = keyring.generations.filter((g) => g < active);
        if (old.length === 0) return [];
        await keyring.retireGenerationsBefore(active);
        log("key rotation: generations retired", { generations: old });
        return old;
      });
    },

    /** Where rotation stands. */
    status,

    /** Stops the background work (server shutdown); a later `resume()` picks it up. */
    async stop(): Promise<void> {
      abort?.abort();
      // A rotate() or resume() mid-way would start a run after this abort: wait it out and abort that too.
      await serial(async () => abort?.abort());
      while (run !== undefined) await run;
    },
  };
}

/** The rotation controller. */
export type Rotation = ReturnType<typeof createRotation>;
