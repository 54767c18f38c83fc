// Closed-loop load generator: N workers, each with one request in flight, for a fixed time or count.
import { performance } from "node:perf_hooks";

/** How a load phase runs. */
export interface LoadOptions {
  /** Requests in flight at once (one per worker). */
  concurrency: number;
  /** Measure for this long; ignored when `count` is set. */
  durationMs?: number;
  /** Measure exactly this many requests instead of a duration. */
  count?: number;
  /** Unrecorded run before measuring, so JIT, connections and caches are warm. */
  warmupMs?: number;
}

/** What one phase measured. */
export interface LoadResult {
  requests: number;
  /** Measured time only. */
  elapsedMs: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Every measured latency, ascending, so results of several rounds can be merged. */
  latencies: number[];
}

/**
 * One request. `seq` is unique across the whole run (warm-up and every round
 * included), so callers can derive distinct names from it; `worker` is 0..concurrency-1.
 */
export type LoadOp = (worker: number, seq: number) => Promise<unknown>;

/**
 * Runs `op` closed-loop: each worker starts its next request only when the last
 * one answered, so the rate measured is what the system sustains at this
 * concurrency rather than what an open-loop sender offers. Any error aborts the
 * phase: a bench that silently counts failures as throughput is worse than none.
 * `seq` hands out the sequence numbers; pass one to share it between phases.
 */
export async function runLoad(op: LoadOp, options: LoadOptions, seq = counter()): Promise<LoadResult> {
  if ((options.warmupMs ?? 0) > 0) await drive(op, options.concurrency, seq, { durationMs: options.warmupMs! }, []);
  const latencies: number[] = [];
  const started = performance.now();
  await drive(op, options.concurrency, seq, options.count !== undefined ? { count: options.count } : { durationMs: options.durationMs ?? 3000 }, latencies);
  return summarize([{ latencies, elapsedMs: performance.now() - started }]);
}

/** One phase of an interleaved comparison. */
export interface Phase {
  op: LoadOp;
  /** Overrides the comparison's concurrency (e.g. 1 for a one-at-a-time baseline). */
  concurrency?: number;
}

/** How an interleaved comparison runs. */
export interface InterleaveOptions {
  concurrency: number;
  rounds: number;
  roundMs: number;
  /** Warm-up of each phase, once, before the first round. */
  warmupMs: number;
  /** Wraps every measured round (e.g. to read CPU counters around it). */
  around?: (name: string, run: () => Promise<LoadResult>) => Promise<LoadResult>;
}

/**
 * Runs phases in alternating short rounds (A B C C B A ...) and merges each
 * phase's rounds. On a shared machine the background load drifts over seconds;
 * alternating spreads that drift over every phase alike, so ratios between
 * phases stay meaningful where back-to-back phases would not.
 */
export async function runInterleaved<K extends string>(phases: Record<K, Phase>, options: InterleaveOptions): Promise<Record<K, LoadResult>> {
  const names = Object.keys(phases) as K[];
  const seq = counter();
  const concurrencyOf = (name: K) => phases[name].concurrency ?? options.concurrency;
  for (const name of names) await drive(phases[name].op, concurrencyOf(name), seq, { durationMs: options.warmupMs }, []);
  const rounds = new Map<K, LoadResult[]>(names.map((n) => [n, []]));
  const around = options.around ?? ((_name, run) => run());
  for (let r = 0; r < options.rounds; r++) {
    // Reversed every other round: a phase can leave work behind in its server (LevelDB compaction
    // after writes, GC) that slows whichever phase follows; a fixed order put that on the same one.
    for (const name of r % 2 === 0 ? names : [...names].reverse()) {
      rounds.get(name)!.push(await around(name, () => runLoad(phases[name].op, { concurrency: concurrencyOf(name), durationMs: options.roundMs }, seq)));
    }
  }
  return Object.fromEntries(names.map((n) => [n, summarize(rounds.get(n)!)])) as Record<K, LoadResult>;
}

/** Merges results (rounds of one phase) into one: total requests over total measured time. */
export function summarize(parts: readonly { latencies: readonly number[]; elapsedMs: number }[]): LoadResult {
  const latencies = parts.flatMap((p) => p.latencies).sort((a, b) => a - b);
  const elapsedMs = parts.reduce((sum, p) => sum + p.elapsedMs, 0);
  return {
    requests: latencies.length,
    elapsedMs,
    perSecond: (latencies.length * 1000) / elapsedMs,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    latencies,
  };
}

function counter(): () => number {
  let n = 0;
  return () => n++;
}

async function drive(op: LoadOp, concurrency: number, next: () => number, limit: { durationMs: number } | { count: number }, latencies: number[]): Promise<void> {
  const deadline = "durationMs" in limit ? performance.now() + limit.durationMs : Number.POSITIVE_INFINITY;
  let remaining = "count" in limit ? limit.count : Number.POSITIVE_INFINITY;
  let failed = false;
  const worker = async (id: number) => {
    // Checking `failed` stops the other workers soon after one fails, instead of
    // letting them run to the deadline against a broken server.
    while (!failed && remaining > 0 && performance.now() < deadline) {
      remaining--;
      const t0 = performance.now();
      try {
        await op(id, next());
      } catch (error) {
        failed = true;
        throw error;
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, id) => worker(id)));
}

/** Nearest-rank percentile of ascending samples (0 when there are none). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
