// Wu-Manber skip tables: let the scan jump over stretches of output where no pattern can start.

/** Bytes per gram; a gram is read as one int32. */
export const GRAM = 4;
/** Longer windows would jump further but fill the table with more grams; secrets rarely need more. */
export const MAX_WINDOW = 64;

const HASH = 0x9e3779b1; // Fibonacci hashing: the high bits of gram * 2^32/phi spread well.

/**
 * For a window of `window` bytes (the shortest pattern, at most MAX_WINDOW) the gram that
 * ends the window says how far the window may move: no pattern's first `window` bytes hold
 * that gram closer to their end. A shift of 0 makes the window's start a candidate, which
 * `starts` (a larger bitset of every pattern's first gram) screens before the automaton runs.
 */
export interface SkipTable {
  readonly window: number;
  readonly hash: number;
  /** `Math.imul(gram, hash) >>> shiftBits` indexes `shift`. */
  readonly shiftBits: number;
  readonly shift: Uint8Array;
  /** `Math.imul(gram, hash) >>> startBits` indexes a bit of `starts`. */
  readonly startBits: number;
  readonly starts: Int32Array;
  /** 1 for every first two bytes of a pattern (as `b0 << 8 | b1`): a cheaper, exact first screen. */
  readonly pairs: Uint8Array;
}

/**
 * Builds the skip table for `patterns`, which must all be at least `window` >= GRAM bytes long.
 * A transparent line feed (stream.ts) may sit anywhere inside an occurrence, at most once in
 * its first `window` bytes, so the table also covers each pattern with one LF inserted after
 * each of its first window - 1 bytes: every gram may stand one byte later, and the grams that
 * hold the LF are entered too.
 */
export function buildSkipTable(patterns: readonly Uint8Array[], window: number): SkipTable {
  const full = window - GRAM + 1;
  // ~8 slots per gram keeps most slots at the full shift; 2 MiB at most stays in cache.
  const shiftLog2 = log2AtLeast(patterns.length * full * 8, 12, 21);
  // Candidates are rare, so this one can be sparser: ~64 bits per pattern, 2 MiB at most.
  const startLog2 = log2AtLeast(patterns.length * 64, 12, 24);
  const shift = new Uint8Array(2 ** shiftLog2).fill(full);
  const starts = new Int32Array(2 ** (startLog2 - 5));
  const pairs = new Uint8Array(1 << 16);
  const enter = (g: number, end: number, first: boolean): void => {
    const h = Math.imul(g, HASH);
    const x = h >>> (32 - shiftLog2);
    const s = Math.max(0, window - 1 - end);
    if (s < shift[x]) shift[x] = s;
    if (first) {
      const y = h >>> (32 - startLog2);
      starts[y >>> 5] |= 1 << (y & 31);
    }
  };
  for (const p of patterns) {
    pairs[(p[0] << 8) | p[1]] = 1;
    let g = (p[0] << 16) | (p[1] << 8) | p[2];
    for (let end = GRAM - 1; end < window; end++) {
      g = (g << 8) | p[end];
      // At `end`, or one later when an LF came before it.
      enter(g, end === window - 1 ? end : end + 1, end === GRAM - 1);
    }
    pairs[(p[0] << 8) | 0x0a] = 1;
    for (let at = 1; at < window; at++) {
      // The first `window` raw bytes with an LF after `at` pattern bytes: only grams holding it are new.
      for (let end = Math.max(GRAM - 1, at); end <= Math.min(at + GRAM - 1, window - 1); end++) {
        const g = (withLf(p, at, end - 3) << 24) | (withLf(p, at, end - 2) << 16) | (withLf(p, at, end - 1) << 8) | withLf(p, at, end);
        enter(g, end, end === GRAM - 1);
      }
    }
  }
  return { window, hash: HASH, shiftBits: 32 - shiftLog2, shift, startBits: 32 - startLog2, starts, pairs };
}

/** Byte `j` of pattern `p` with an LF inserted after its first `at` bytes (read in place: a copy per LF position was most of the build's time). */
function withLf(p: Uint8Array, at: number, j: number): number {
  return j < at ? p[j] : j === at ? 0x0a : p[j - 1];
}

function log2AtLeast(n: number, min: number, max: number): number {
  let log2 = min;
  while (log2 < max && 2 ** log2 < n) log2++;
  return log2;
}
