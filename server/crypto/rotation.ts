// Key rotation's controller: adds a keyring generation and re-encrypts every sealed value to it online (rotate, resume, status, idle, retire).
import { setImmediate as yieldToLoop, setTimeout as sleep } from "node:timers/promises";
import { fail } from "../errors.js";
import type { KvStore } from "../store/kv.js";
import type { Barrier } from "./barrier.js";
import type { Keyring } from "./keyring.js";
import { batchesWithinLimits, moveBatch } from "./rotation-mover.js";
import { countStale, isStale, pages } from "./rotation-scan.js";

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
   * How long after the active generation changes a pass must start before it may declare
   * re-encryption done, and retiring may verify (default 1000 ms). It covers two kinds of late
   * write under the old generation: one sealed just before the switch and still on its way to
   * disk, and, on a store shared by several servers, the writes of the others until their
   * keyring watch delivers the new generation (tens of ms on etcd, so 1000 ms leaves a wide
   * margin). A server whose watch lags longer is still caught: retiring re-counts first and
   * refuses while any value is under an old generation.
   */
  settleMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** The store-wide lock: one rotation step (adding a generation, a pass, retiring) at a time across servers. */
export const ROTATION_LOCK = "key-rotation";

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

  let run: Promise<void> | undefined;
  let abort: AbortController | undefined;
  /** Set when a rotate() lands while a run is finishing, so the run goes round again instead of ending. */
  let rerun = false;
  let failure: unknown;

  /** Serializes rotate/resume/retire within this process (the store lock does it across servers). */
  let serialTail: Promise<unknown> = Promise.resolve();
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = serialTail.then(fn, fn);
    serialTail = next.catch(() => {});
    return next;
  }

  /**
   * Runs `fn` under the store-wide rotation lock. An abort while still waiting for the lock
   * (another server's pass holds it) stops the wait; once `fn` runs it is awaited to the end,
   * so `stop()` never returns with a write in flight.
   */
  function locked<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal === undefined) return store.withLock(ROTATION_LOCK, fn);
    let entered = false;
    const held = store.withLock(ROTATION_LOCK, async () => {
      entered = true;
      signal.throwIfAborted();
      return fn();
    });
    const waitAborted = new Promise<never>((_, reject) => {
      signal.addEventListener("abort", () => !entered && reject(signal.reason), { once: true });
    });
    held.catch(() => {});
    waitAborted.catch(() => {});
    return Promise.race([held, waitAborted]);
  }

  const count = (signal?: AbortSignal) => countStale(store, keyring, barrier.families, signal);
  const progress = {
    moved(n: number) {
      valuesMoved += n;
      valuesRemaining = Math.max(0, valuesRemaining - n);
    },
    skipped(n: number) {
      valuesRemaining = Math.max(0, valuesRemaining - n);
    },
  };

  /** One pass over every family, moving what is not on the active generation, throttled to `rate`. */
  async function movePass(signal: AbortSignal): Promise<void> {
    // Another server may have rotated since: move to the generation the store says is active.
    await keyring.reload();
    for await (const [family, page] of pages(store, barrier.families, signal)) {
      const active = keyring.activeGeneration;
      const stale = page.filter((entry) => isStale(family, entry, active));
      for (const batch of batchesWithinLimits(family, stale, store.limits)) {
        signal.throwIfAborted();
        const started = Date.now();
        await moveBatch({ store, keyring, barrier }, family, batch, progress);
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
      const stale = counted ?? (await count(signal));
      counted = undefined;
      valuesRemaining = stale;
      if (stale === 0) {
        const settled = keyring.activeSince + settleMs;
        if (startedAt >= settled) {
          log("key rotation: re-encryption done", { generation: keyring.activeGeneration, valuesMoved, passes });
          return;
        }
        await sleep(settled - startedAt, undefined, { signal });
        continue;
      }
      passes++;
      await locked(() => movePass(signal), signal);
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

  /** Drops generations older than the active one after a verification count finds nothing under them. */
  async function retireVerified(): Promise<number[]> {
    const wait = keyring.activeSince + settleMs - Date.now();
    if (wait > 0) await sleep(wait);
    await keyring.reload();
    const active = keyring.activeGeneration;
    const stale = await count();
    if (stale > 0) {
      throw fail.precondition(
        `key rotation: ${stale} stored values still hold blobs under generations older than ${active}; run re-encryption (resume) before retiring them`,
      );
    }
    const old = keyring.generations.filter((g) => g < active);
    if (old.length === 0) return [];
    await keyring.retireGenerationsBefore(active);
    log("key rotation: generations retired", { generations: old });
    return old;
  }

  return {
    /** Adds a generation (new writes use it at once) and starts re-encrypting in the background. */
    rotate(): Promise<RotationStatus> {
      return serial(async () => {
        const generation = await locked(() => keyring.addGeneration());
        rotatedAt = new Date().toISOString();
        valuesMoved = 0;
        log("key rotation: generation added", { generation });
        if (run !== undefined) {
          start(undefined);
          return status();
        }
        const stale = await count();
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
        const stale = await count();
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
        return locked(retireVerified);
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
