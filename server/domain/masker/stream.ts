// Scans one output stream for patterns: a Wu-Manber skip loop finds candidate starts, the Aho-Corasick automaton confirms them.

import { type Automaton, MATCH_SHIFT, transition } from "./automaton.js";
import { MaskedOutput } from "./output.js";
import { GRAM, type SkipTable } from "./skip.js";

const EMPTY = new Uint8Array(0);
// Below this window, Wu-Manber jumps are too short to beat testing every position (bench/masker.ts).
const MIN_SKIP_WINDOW = 5;
// The flag and pair-count bits of a state's info; a sparse state with one pair has ONE_CHILD.
const LOW_BITS = (1 << MATCH_SHIFT) - 1;
const ONE_CHILD = (1 << 1) | 1;

/**
 * One output stream's masker. The scan alternates between two modes and together they
 * find exactly the occurrences the automaton alone would: the skip loop jumps over
 * positions where no pattern can start, and at a real start the automaton takes over
 * until its state falls below a gram's depth (no longer prefix is in progress).
 * Fails closed: after an internal error every call throws.
 */
export class AutomatonStream {
  private readonly pool: Int32Array;
  private readonly classOf: Uint16Array;
  private readonly skip: SkipTable | null;
  private readonly shallowBelow: number;
  private readonly root: number;
  private readonly output: MaskedOutput;
  /** Offset of the automaton state after the last byte consumed. */
  private state: number;
  /** Bytes consumed so far. */
  private pos = 0;
  /** The state after the gram at the start the skip loop last confirmed. */
  private entry = 0;
  private ended = false;
  private failed = false;

  constructor(automaton: Automaton, mask: Uint8Array) {
    this.pool = automaton.pool;
    this.classOf = automaton.classOf;
    this.skip = automaton.skip;
    this.shallowBelow = automaton.shallowBelow;
    this.root = automaton.root;
    this.state = automaton.root;
    this.output = new MaskedOutput(mask, automaton.maxDepth);
  }

  /** Feeds a chunk and returns what is safe to emit; may be a view of `chunk` itself. */
  push(chunk: Uint8Array): Uint8Array {
    this.checkUsable();
    if (this.ended) throw new Error("masker: push() after end()");
    try {
      return this.scan(chunk);
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  /** Ends the stream and returns the held-back bytes, masked. A second call returns nothing. */
  end(): Uint8Array {
    this.checkUsable();
    if (this.ended) return EMPTY;
    try {
      this.ended = true;
      return this.output.finishStream(this.pos);
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  private checkUsable(): void {
    // Fail closed: after an internal error the bytes in flight were never checked.
    if (this.failed) throw new Error("masker: stream failed earlier and must be dropped");
  }

  private scan(chunk: Uint8Array): Uint8Array {
    const pool = this.pool;
    const classOf = this.classOf;
    const shallowBelow = this.shallowBelow;
    const n = chunk.length;
    const base = this.pos;
    this.output.begin(chunk, base);
    let o = this.state;
    let i = 0;
    for (;;) {
      // Automaton mode: one transition per byte, until the state is shallow enough to skip again.
      let windowStart = -1;
      while (i < n) {
        const c = classOf[chunk[i++]];
        const kind = pool[o - 2] & LOW_BITS;
        // Inline the common cases: a dense row, or a sparse state whose only child matches.
        const e = kind === 0 ? pool[o + c] : kind === ONE_CHILD && pool[o + 1] === c ? pool[o + 2] : transition(pool, o, c);
        if (e > 0) {
          o = e;
          continue;
        }
        o = -e;
        const length = pool[o - 2] >> MATCH_SHIFT;
        const depth = pool[o - 1];
        if (length > 0) this.output.covered(base + i, length, base + i - depth);
        if (depth < shallowBelow && depth <= i) {
          windowStart = i - depth;
          break;
        }
      }
      if (windowStart < 0) break;
      // Skip mode: nothing before windowStart can start a pattern any more.
      const found = this.skipTo(chunk, windowStart);
      if (found < 0) {
        // The window no longer fits in this chunk: walk the rest so the next chunk resumes exactly.
        o = this.walk(base + ~found, base + n);
        i = n;
        break;
      }
      // The skip loop walked the gram already: its state may itself end a pattern.
      o = this.entry;
      i = found + GRAM;
      const length = pool[o - 2] >> MATCH_SHIFT;
      if (length > 0) this.output.covered(base + i, length, base + i - pool[o - 1]);
    }
    this.state = o;
    this.pos = base + n;
    return this.output.finish(this.pos - pool[o - 1]);
  }

  /**
   * Finds, from chunk index `start` on, the first position where a pattern really starts;
   * returns it, or ~position of the first start whose window no longer fits in the chunk.
   */
  private skipTo(chunk: Uint8Array, start: number): number {
    const skip = this.skip!;
    return skip.window >= MIN_SKIP_WINDOW ? this.skipWindows(chunk, start, skip) : this.skipBytes(chunk, start, skip);
  }

  /** Wu-Manber: the gram ending each window says how far the window may jump. */
  private skipWindows(chunk: Uint8Array, start: number, skip: SkipTable): number {
    const { window, hash, shiftBits, shift, startBits, starts } = skip;
    const n = chunk.length;
    let s = start;
    while (s + window <= n) {
      const last = s + window - 1;
      const g = (chunk[last - 3] << 24) | (chunk[last - 2] << 16) | (chunk[last - 1] << 8) | chunk[last];
      const jump = shift[Math.imul(g, hash) >>> shiftBits];
      if (jump !== 0) {
        s += jump;
        continue;
      }
      const g0 = (chunk[s] << 24) | (chunk[s + 1] << 16) | (chunk[s + 2] << 8) | chunk[s + 3];
      const y = Math.imul(g0, hash) >>> startBits;
      if ((starts[y >>> 5] & (1 << (y & 31))) !== 0 && this.isStart(chunk, s)) return s;
      s++;
    }
    return ~s;
  }

  /**
   * With a short pattern among them, windows jump too little to pay for themselves: test
   * every position instead, its first two bytes exactly, then its first gram.
   */
  private skipBytes(chunk: Uint8Array, start: number, skip: SkipTable): number {
    const { hash, startBits, starts, pairs } = skip;
    const n = chunk.length;
    if (start + GRAM > n) return ~start;
    for (let s = start, end = n - GRAM; s <= end; s++) {
      if (pairs[(chunk[s] << 8) | chunk[s + 1]] === 0) continue;
      const g = (chunk[s] << 24) | (chunk[s + 1] << 16) | (chunk[s + 2] << 8) | chunk[s + 3];
      const y = Math.imul(g, hash) >>> startBits;
      if ((starts[y >>> 5] & (1 << (y & 31))) !== 0 && this.isStart(chunk, s)) return s;
    }
    return ~(n - GRAM + 1);
  }

  /**
   * Whether the gram at chunk index `s` really starts some pattern (the bitsets hash, so
   * they can only rule starts out); if so, `entry` is the state after it.
   */
  private isStart(chunk: Uint8Array, s: number): boolean {
    const pool = this.pool;
    const classOf = this.classOf;
    let o = this.root;
    for (let at = s; at < s + GRAM; at++) o = Math.abs(transition(pool, o, classOf[chunk[at]]));
    this.entry = o;
    return pool[o - 1] === GRAM;
  }

  /** The state reached from the root over the held bytes [from, to). */
  private walk(from: number, to: number): number {
    let o = this.root;
    for (let at = from; at < to; at++) o = Math.abs(transition(this.pool, o, this.classOf[this.output.byteAt(at)]));
    return o;
  }

}
