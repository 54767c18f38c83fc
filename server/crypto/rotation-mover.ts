// Re-sealing for rotation: stale values cut into batches within the store's limits, each moved in one guarded write.
import { fail, VeilError } from "../errors.js";
import { type KvGuard, type KvLimits, type KvOp, type KvStore, KvConflictError } from "../store/kv.js";
import type { Barrier, SealedFamily } from "./barrier.js";
import type { Keyring } from "./keyring.js";
import { isStale, type SealedEntry, where } from "./rotation-scan.js";

/** Stored values per atomic guarded write at most (fewer when the store's limits say so). */
export const BATCH = 128;
/** A batch that keeps conflicting is retried this often (re-read each time) before the run fails. */
const MAX_CONFLICT_RETRIES = 100;

/** What moving needs. */
export interface MoverDeps {
  store: KvStore;
  keyring: Keyring;
  barrier: Barrier;
}

/** What one value costs a write: a put of the re-sealed blob (as long as the old one) and a guard on the old bytes. */
function entryCost([path, blob]: SealedEntry): number {
  return 2 * (Buffer.byteLength(path) + blob.byteLength);
}

/**
 * Cuts stale values into batches whose ops, guards and bytes all fit one write. A value too
 * big to move even alone (its put plus its guard) is refused by name rather than half-moved.
 */
export function batchesWithinLimits(family: SealedFamily, entries: readonly SealedEntry[], limits: KvLimits): SealedEntry[][] {
  const most = Math.max(1, Math.min(BATCH, limits.maxOps, limits.maxGuards));
  const batches: SealedEntry[][] = [];
  let batch: SealedEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const cost = entryCost(entry);
    if (cost > limits.maxBytes) {
      throw fail.exhausted(`key rotation: ${where(family, entry[0])} needs ${cost} bytes to re-encrypt in one write, the store commits at most ${limits.maxBytes}`);
    }
    if (batch.length >= most || bytes + cost > limits.maxBytes) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(entry);
    bytes += cost;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** Re-seals a batch under the active generation: a put per value, guarded on the exact bytes read. */
async function resealAll(barrier: Barrier, family: SealedFamily, batch: readonly SealedEntry[]): Promise<{ ops: KvOp[]; guards: KvGuard[] }> {
  const ops: KvOp[] = [];
  const guards: KvGuard[] = [];
  for (const [path, blob] of batch) {
    let resealed: Uint8Array;
    try {
      resealed = await barrier.reseal(path, blob);
    } catch (cause) {
      if (cause instanceof VeilError && cause.kind !== "data_loss") throw cause;
      throw fail.dataLoss(`key rotation: cannot re-encrypt ${where(family, path)}`, cause);
    }
    ops.push({ type: "put", key: path, value: resealed });
    // Guarding on the exact bytes read means a concurrent delete or rewrite wins: we never resurrect or clobber.
    guards.push({ key: path, value: blob });
  }
  return { ops, guards };
}

/**
 * Moves one batch; on conflict re-reads it and retries what still needs moving. `skipped(n)` is
 * told of values that no longer need moving (moved, or changed/deleted by someone else), `moved(n)` of those moved.
 */
export async function moveBatch(
  deps: MoverDeps,
  family: SealedFamily,
  batch: readonly SealedEntry[],
  progress: { moved(n: number): void; skipped(n: number): void },
): Promise<void> {
  let pending = batch;
  for (let attempt = 0; pending.length > 0; attempt++) {
    const { ops, guards } = await resealAll(deps.barrier, family, pending);
    try {
      await deps.store.write(ops, guards);
      progress.moved(pending.length);
      return;
    } catch (error) {
      if (!(error instanceof KvConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
    }
    const fresh = await deps.store.getMany(pending.map(([path]) => path));
    const active = deps.keyring.activeGeneration;
    const next: SealedEntry[] = [];
    for (const [i, [path]] of pending.entries()) {
      const value = fresh[i];
      if (value !== undefined && isStale(family, [path, value], active)) next.push([path, value]);
    }
    progress.skipped(pending.length - next.length);
    pending = next;
  }
}
