// Scans one output stream for patterns: a Wu-Manber skip loop finds candidate starts, the Aho-Corasick automaton confirms them.
//
// Patterns are matched against a view of the stream without its transparent bytes, each of which
// may sit inside an occurrence (the mask then covers it) and is never part of a pattern:
//   - a line feed that ends a line of at least TRANSPARENT_LINE bytes, with the carriage return
//     right before it if any: base64 tools wrap at 64 or 76 columns;
//   - an SGR or erase-line escape, ESC [ digits-and-semicolons m|K: `grep --color=always`.
// The skip loop handles a transparent LF through its table (skip.ts); CR and ESC are rare
// "stop" bytes it never jumps over: the automaton walks each of them.

import { type Automaton, CHAIN_STRIDE, CLASS_MASK, type GramIndex, gramState, MATCH_SHIFT, transition } from "./automaton.js";
import { MaskedOutput } from "./output.js";
import { GRAM, type SkipTable } from "./skip.js";

/** A line feed is transparent when the line it ends is at least this long (in bytes, its CR not counted as a break). */
export const TRANSPARENT_LINE = 64;
/** The longest parameter list of a transparent escape; longer ones are ordinary bytes. */
export const MAX_ESCAPE_PARAMS = 32;

const EMPTY = new Uint8Array(0);
const LF = 0x0a;
const CR = 0x0d;
const ESC = 0x1b;
// Classes 1..3 are LF, CR and ESC (automaton.ts): their links always make the scan look.
const SPECIAL_CLASSES = 3;
// Below this window, Wu-Manber jumps are too short to beat testing every position (bench/masker.ts).
const MIN_SKIP_WINDOW = 5;
// The flag and pair-count bits of a state's info; a sparse state with one pair has ONE_CHILD.
const LOW_BITS = (1 << MATCH_SHIFT) - 1;
const ONE_CHILD = (1 << 1) | 1;
// What transparentAt answers besides the index after the transparent bytes.
const NOT_TRANSPARENT = -1;
const UNDECIDED = -2;

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
  private readonly chainBytes: Uint8Array;
  private readonly chainWords: DataView;
  private readonly skip: SkipTable | null;
  private readonly firstGrams: GramIndex | null;
  private readonly shallowBelow: number;
  private readonly root: number;
  private readonly minLength: number;
  private readonly output: MaskedOutput;
  /** Offset of the automaton state after the last byte consumed. */
  private state: number;
  /** Bytes consumed so far (an unfinished CR or escape at a chunk's end waits in `leftover`). */
  private pos = 0;
  private leftover: Uint8Array = EMPTY;
  /** Bytes since the last LF before the chunk being scanned, capped at TRANSPARENT_LINE. */
  private lineBefore = 0;
  /** Transparent byte runs [gapStart, gapEnd) inside the current prefix, absolute and ascending. */
  private readonly gapStart: number[] = [];
  private readonly gapEnd: number[] = [];
  /** The chunk being scanned, its stream position, and the next stop byte (CR or ESC) in it. */
  private chunk: Uint8Array = EMPTY;
  private base = 0;
  private nextStop = 0;
  /** The state and chunk index after the gram at the start the skip loop last confirmed. */
  private entry = 0;
  private entryEnd = 0;
  /**
   * The raw stream's own automaton state while it may match what the view cannot (an
   * occurrence through or into transparent bytes), else 0: then the raw state is the view's
   * state cut to the bytes since the last transparent ones, and the view finds all it would.
   */
  private raw = 0;
  /** Plain bytes since the last transparent ones, counted while `raw` is set. */
  private plainSince = 0;
  private readonly lineFeedInside: boolean;
  private ended = false;
  /** At end(): no byte follows, so a CR or escape still undecided is an ordinary byte. */
  private final = false;
  private failed = false;

  constructor(automaton: Automaton, mask: Uint8Array, minLength: number) {
    this.pool = automaton.pool;
    this.classOf = automaton.classOf;
    this.chainBytes = automaton.chainBytes;
    this.chainWords = new DataView(automaton.chainBytes.buffer, automaton.chainBytes.byteOffset, automaton.chainBytes.length);
    this.skip = automaton.skip;
    this.firstGrams = automaton.firstGrams;
    this.shallowBelow = automaton.shallowBelow;
    this.root = automaton.root;
    this.lineFeedInside = automaton.lineFeedInside;
    this.state = automaton.root;
    this.minLength = minLength;
    // Transparent bytes make the held raw bytes longer than the prefix: at most an escape per byte.
    this.output = new MaskedOutput(mask, automaton.maxDepth * (MAX_ESCAPE_PARAMS + 4) + 2 * MAX_ESCAPE_PARAMS);
  }

  /** Masks this stream has emitted so far (for metrics; never a value or a position). */
  get masksApplied(): number {
    return this.output.masksEmitted;
  }

  /** Feeds a chunk and returns what is safe to emit; may be a view of `chunk` itself. */
  push(chunk: Uint8Array): Uint8Array {
    this.checkUsable();
    if (this.ended) throw new Error("masker: push() after end()");
    return this.guard(() => this.scan(chunk));
  }

  /** A command ended: releases what is held (see StreamMasker.flush) and keeps scanning state. */
  flush(): Uint8Array {
    this.checkUsable();
    if (this.ended) throw new Error("masker: flush() after end()");
    return this.guard(() => {
      const depth = this.pool[this.state - 1];
      const end = this.pos + this.leftover.length;
      let from = this.rawStart(this.pos, depth);
      let maskHeld = depth >= this.minLength;
      if (this.raw !== 0) {
        const rawDepth = this.rawDepthThroughLeftover();
        if (rawDepth >= this.minLength && (!maskHeld || end - rawDepth < from)) {
          from = end - rawDepth;
          maskHeld = true;
        }
      }
      return this.output.flush(from, end, maskHeld, this.trailingGapStart(end));
    });
  }

  /**
   * Where the held bytes stop being possible secret bytes: transparent bytes at their very end
   * (the LF after a long line that ends in a secret) are never part of a pattern, so a flush
   * emits them as they are instead of folding them into the mask.
   */
  private trailingGapStart(end: number): number {
    const last = this.gapEnd.length - 1;
    return last >= 0 && this.gapEnd[last] === end ? this.gapStart[last]! : end;
  }

  /** Ends the stream and returns the held-back bytes, masked. A second call returns nothing. */
  end(): Uint8Array {
    this.checkUsable();
    if (this.ended) return EMPTY;
    this.ended = true;
    return this.guard(() => {
      if (this.leftover.length === 0) return this.output.finishStream(this.pos);
      // The held CR or escape may end a pattern itself (a raw value holding ESC): scan it, decided.
      this.final = true;
      const last = Buffer.from(this.scan(EMPTY));
      return Buffer.concat([last, this.output.finishStream(this.pos)]);
    });
  }

  private guard(fn: () => Uint8Array): Uint8Array {
    try {
      return fn();
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  private checkUsable(): void {
    // Fail closed: after an internal error the bytes in flight were never checked.
    if (this.failed) throw new Error("masker: stream failed earlier and must be dropped");
  }

  private scan(input: Uint8Array): Uint8Array {
    const pool = this.pool;
    const classOf = this.classOf;
    const shallowBelow = this.shallowBelow;
    const base = this.pos;
    const chunk = this.beginChunk(input);
    const n = chunk.length;
    let o = this.state;
    let i = 0;
    let consumed = n;
    // The automaton must walk past this index before the skip loop may take over (a stop byte).
    let noExitBefore = 0;
    if (this.raw !== 0) {
      // The last chunk ended while the raw stream could still match through transparent bytes.
      this.state = o;
      i = this.runDual(0);
      o = this.state;
      if (i < 0) consumed = ~i;
    }
    scanning: for (; i >= 0; ) {
      // Automaton mode: one transition per byte, until the state is shallow enough to skip again.
      let windowStart = -1;
      while (i < n) {
        const c = classOf[chunk[i++]];
        const kind = pool[o - 2] & LOW_BITS;
        // Inline the common cases: a dense row, or a sparse state whose only child matches.
        let e: number;
        if (kind === 0) e = pool[o + c];
        else if (kind === ONE_CHILD && (pool[o + 1] & CLASS_MASK) === c) {
          const run = pool[o + 1] >>> 24;
          if (run !== 0) {
            // A chain of single children (automaton.ts): this byte took its first step. Its states need no look.
            const from = i;
            i = this.chainEnd(i, Math.min(n, i + run - 1), ((o / CHAIN_STRIDE) | 0) + 1);
            o += CHAIN_STRIDE * (1 + i - from);
            continue;
          }
          e = pool[o + 2];
        } else e = transition(pool, o, c);
        if (e > 0) {
          o = e;
          continue;
        }
        if (c !== 0 && c <= SPECIAL_CLASSES) {
          const after = this.transparentAt(i - 1, pool[o - 1]);
          if (after === UNDECIDED) {
            consumed = i - 1;
            break scanning;
          }
          if (after !== NOT_TRANSPARENT) {
            // The view skips them; the raw stream may match into or through them. An LF or CR at
            // the root, and an LF no pattern holds, leave the raw stream at the root: nothing to do.
            if (chunk[i - 1] === ESC || (this.lineFeedInside && pool[o - 1] > 0)) {
              this.state = o;
              i = this.rawThrough(i - 1, after);
              o = this.state;
              if (i < 0) {
                consumed = ~i;
                break scanning;
              }
            } else i = after;
            continue;
          }
        }
        o = -e;
        const length = pool[o - 2] >> MATCH_SHIFT;
        const depth = pool[o - 1];
        if (length > 0) this.output.covered(this.rawStart(base + i, length), base + i, this.rawStart(base + i, depth));
        if (depth < shallowBelow && i - depth >= noExitBefore && this.prefixIsPlain(base + i, depth)) {
          windowStart = i - depth;
          break;
        }
      }
      if (windowStart < 0) break;
      // Skip mode: nothing before windowStart can start a pattern any more.
      const limit = this.stopFrom(windowStart);
      const found = this.skipTo(chunk, windowStart, limit);
      if (found < 0) {
        // The window no longer fits before the stop byte or the chunk's end: the automaton walks on from there.
        o = this.root;
        i = ~found;
        noExitBefore = limit + 1;
        continue;
      }
      // The skip loop walked the gram already: its state may itself end a pattern.
      o = this.entry;
      i = this.entryEnd;
      // At the root, isStart leaves the gram to the automaton: it must walk past the start first.
      noExitBefore = o === this.root ? i + 1 : 0;
      const length = pool[o - 2] >> MATCH_SHIFT;
      if (length > 0) this.output.covered(this.rawStart(base + i, length), base + i, this.rawStart(base + i, pool[o - 1]));
    }
    this.state = o;
    return this.finishChunk(consumed);
  }

  /**
   * Compares the chunk from index `i` with a chain's bytes from `chainBytes[q]`, four bytes at
   * a time, up to index `stop`: returns the index of the first byte that differs, or `stop`.
   */
  private chainEnd(i: number, stop: number, q: number): number {
    const chunk = this.chunk;
    const words = this.output.chunkWords;
    const chainBytes = this.chainBytes;
    const chainWords = this.chainWords;
    for (; i + 4 <= stop && words.getInt32(i, true) === chainWords.getInt32(q, true); q += 4) i += 4;
    for (; i < stop && chunk[i] === chainBytes[q]; q++) i++;
    return i;
  }

  /** Starts scanning `input`, after the bytes left undecided at the last chunk's end. */
  private beginChunk(input: Uint8Array): Uint8Array {
    const chunk = this.leftover.length === 0 ? input : concat(this.leftover, input);
    this.leftover = EMPTY;
    this.output.begin(chunk, this.pos);
    this.chunk = chunk;
    this.base = this.pos;
    this.nextStop = this.findStop(0);
    return chunk;
  }

  /** Ends the chunk after `consumed` bytes (the rest waits as leftover): returns what is decided. */
  private finishChunk(consumed: number): Uint8Array {
    const chunk = this.chunk;
    if (consumed < chunk.length) this.leftover = chunk.slice(consumed);
    this.pos = this.base + consumed;
    this.lineBefore = this.lineRunAt(consumed);
    // Held: the view's prefix in progress and, while it may see more, the raw stream's.
    let boundary = this.rawStart(this.pos, this.pool[this.state - 1]);
    if (this.raw !== 0) boundary = Math.min(boundary, this.pos + this.leftover.length - this.rawDepthThroughLeftover());
    this.chunk = EMPTY;
    return this.output.finish(boundary);
  }

  /**
   * The view skips the transparent bytes [q, after) of the chunk: walks the raw stream through
   * them (masking what it finds), then view and raw side by side until the raw stream can
   * find nothing the view would not. Returns the chunk index to go on from, or ~index of
   * an undecided CR or escape. Reads and updates `state`.
   */
  private rawThrough(q: number, after: number): number {
    const pool = this.pool;
    let r = this.rawEntry(q, after);
    for (let k = q; k < after; k++) {
      r = Math.abs(transition(pool, r, this.classOf[this.chunk[k]]));
      this.rawCovered(r, k + 1, after);
    }
    this.plainSince = 0;
    this.raw = pool[r - 1] > 0 ? r : 0;
    return this.runDual(after);
  }

  /** The raw stream's state before the transparent bytes [q, after), recorded as the view's last gap when inside a prefix. */
  private rawEntry(q: number, after: number): number {
    const o = this.state;
    const depth = this.pool[o - 1];
    if (depth === 0) return this.root;
    const t = this.base + q;
    let k = this.gapEnd.length - 1;
    // Merged with transparent bytes right before: no plain byte since, the raw stream starts afresh.
    if (this.gapStart[k] < t) return this.root;
    k--;
    if (k < 0 || this.gapEnd[k] <= this.rawStart(this.base + after, depth)) return o;
    // The view's prefix spans earlier transparent bytes: the raw prefix starts after them.
    let r = this.root;
    for (let at = this.gapEnd[k]; at < t; at++) r = Math.abs(transition(this.pool, r, this.classOf[this.output.byteAt(at)]));
    return r;
  }

  /** Steps view and raw stream byte by byte while `raw` is set; returns as rawThrough does. */
  private runDual(from: number): number {
    const pool = this.pool;
    const classOf = this.classOf;
    const chunk = this.chunk;
    const n = chunk.length;
    let i = from;
    while (this.raw !== 0 && i < n) {
      const c = classOf[chunk[i]];
      let end = i + 1;
      let view = true;
      if (c !== 0 && c <= SPECIAL_CLASSES) {
        const after = this.transparentAt(i, pool[this.state - 1]);
        if (after === UNDECIDED) return ~i;
        if (after !== NOT_TRANSPARENT) {
          end = after;
          view = false;
        }
      }
      if (view) this.state = Math.abs(transition(pool, this.state, c));
      let r = this.raw;
      for (let k = i; k < end; k++) {
        r = Math.abs(transition(pool, r, classOf[chunk[k]]));
        this.rawCovered(r, k + 1, end);
      }
      const o = this.state;
      const length = pool[o - 2] >> MATCH_SHIFT;
      if (view && length > 0) this.output.covered(this.rawStart(this.base + end, length), this.base + end, this.boundaryAt(end, r));
      this.plainSince = view ? this.plainSince + 1 : 0;
      // Converged: the raw prefix lies in plain bytes the view sees too.
      this.raw = pool[r - 1] > this.plainSince ? r : 0;
      i = end;
    }
    return i;
  }

  /** Reports the raw occurrence, if any, that state `r` ends at chunk index `k`; `end` is where the view is. */
  private rawCovered(r: number, k: number, end: number): void {
    const length = this.pool[r - 2] >> MATCH_SHIFT;
    if (length > 0) this.output.covered(this.base + k - length, this.base + k, Math.min(this.boundaryAt(end, r), this.base + k - this.pool[r - 1]));
  }

  /** No occurrence can start before this any more: the start of the view's prefix and of the raw one (state `r`, ending at chunk index `end`). */
  private boundaryAt(end: number, r: number): number {
    const at = this.base + end;
    return Math.min(this.rawStart(at, this.pool[this.state - 1]), at - this.pool[r - 1]);
  }

  /** The raw prefix's depth after the held CR or escape at the chunk's end (`raw` set). */
  private rawDepthThroughLeftover(): number {
    let r = this.raw;
    for (const b of this.leftover) r = Math.abs(transition(this.pool, r, this.classOf[b]));
    return this.pool[r - 1];
  }

  /**
   * At chunk index `q`, an LF, CR or ESC: the index after it and the transparent bytes it
   * starts, NOT_TRANSPARENT, or UNDECIDED when the chunk ends too soon to tell. Transparent
   * bytes inside a prefix (depth > 0) are remembered, to map the prefix back onto raw bytes.
   */
  private transparentAt(q: number, depth: number): number {
    const chunk = this.chunk;
    const n = chunk.length;
    const b = chunk[q];
    const undecided = this.final ? NOT_TRANSPARENT : UNDECIDED;
    let after: number;
    if (b === LF) {
      // At the root an LF leads back to the root either way: no need to look back.
      if (depth === 0) return q + 1;
      if (!this.lfIsTransparent(q)) return NOT_TRANSPARENT;
      after = q + 1;
    } else if (b === CR) {
      if (depth === 0) return q + 1;
      // Only a CR after a long line can be the start of a transparent CRLF.
      if (!this.lfIsTransparent(q + 1)) return NOT_TRANSPARENT;
      if (q + 1 >= n) return undecided;
      if (chunk[q + 1] !== LF || !this.lfIsTransparent(q + 1)) return NOT_TRANSPARENT;
      after = q + 2;
    } else {
      // ESC [ params m|K is transparent wherever it stands, so the view never holds it.
      let j = q + 1;
      if (j >= n) return undecided;
      if (chunk[j++] !== 0x5b) return NOT_TRANSPARENT;
      while (j < n && j - q - 2 < MAX_ESCAPE_PARAMS && (chunk[j] === 0x3b || (chunk[j] >= 0x30 && chunk[j] <= 0x39))) j++;
      if (j >= n) return j - q - 2 < MAX_ESCAPE_PARAMS ? undecided : NOT_TRANSPARENT;
      if (chunk[j] !== 0x6d && chunk[j] !== 0x4b) return NOT_TRANSPARENT;
      after = j + 1;
      if (depth === 0) return after;
    }
    this.addGap(this.base + q, this.base + after);
    return after;
  }

  /** Whether the LF at chunk index `q` ends a line of at least TRANSPARENT_LINE bytes. */
  private lfIsTransparent(q: number): boolean {
    const chunk = this.chunk;
    const from = q - TRANSPARENT_LINE;
    for (let k = q - 1; k >= 0 && k >= from; k--) if (chunk[k] === LF) return false;
    return from >= 0 || this.lineBefore + q >= TRANSPARENT_LINE;
  }

  /** Bytes since the last LF before chunk index `at` (capped), for the next chunk's look-back. */
  private lineRunAt(at: number): number {
    const chunk = this.chunk;
    for (let k = at - 1; k >= 0 && k >= at - TRANSPARENT_LINE; k--) if (chunk[k] === LF) return at - 1 - k;
    return Math.min(TRANSPARENT_LINE, this.lineBefore + at);
  }

  private addGap(start: number, end: number): void {
    const last = this.gapEnd.length - 1;
    if (last >= 0 && this.gapEnd[last] === start) this.gapEnd[last] = end;
    else {
      this.gapStart.push(start);
      this.gapEnd.push(end);
    }
  }

  /** The stream position where the last `views` non-transparent bytes before `end` begin. */
  private rawStart(end: number, views: number): number {
    let at = end;
    let rest = views;
    for (let k = this.gapEnd.length - 1; k >= 0 && rest > 0; k--) {
      const plain = at - this.gapEnd[k];
      if (rest <= plain) break;
      rest -= plain;
      at = this.gapStart[k];
    }
    return at - rest;
  }

  /** Whether the prefix of `depth` view bytes ending at `end` is plain (no transparent bytes) and in this chunk; drops older gaps. */
  private prefixIsPlain(end: number, depth: number): boolean {
    if (this.gapEnd.length === 0) return end - depth >= this.base;
    const start = this.rawStart(end, depth);
    let keep = 0;
    while (keep < this.gapEnd.length && this.gapEnd[keep] <= start) keep++;
    this.gapStart.splice(0, keep);
    this.gapEnd.splice(0, keep);
    return this.gapEnd.length === 0 && start >= this.base;
  }

  /** Chunk index of the first CR or ESC at or after `from`, or the chunk's length. */
  private findStop(from: number): number {
    const chunk = this.chunk;
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const esc = buf.indexOf(ESC, from);
    const cr = buf.indexOf(CR, from);
    if (esc < 0) return cr < 0 ? chunk.length : cr;
    return cr < 0 || esc < cr ? esc : cr;
  }

  private stopFrom(from: number): number {
    if (this.nextStop < from) this.nextStop = this.findStop(from);
    return this.nextStop;
  }

  /**
   * Finds, from chunk index `start` on, the first position where a pattern really starts;
   * returns it, or ~position of the first start whose window no longer fits before `limit`.
   */
  private skipTo(chunk: Uint8Array, start: number, limit: number): number {
    const skip = this.skip!;
    return skip.window >= MIN_SKIP_WINDOW ? this.skipWindows(chunk, start, limit, skip) : this.skipBytes(chunk, start, limit, skip);
  }

  /** Wu-Manber: the gram ending each window says how far the window may jump. */
  private skipWindows(chunk: Uint8Array, start: number, limit: number, skip: SkipTable): number {
    const { window, hash, shiftBits, shift, startBits, starts } = skip;
    let s = start;
    while (s + window <= limit) {
      const last = s + window - 1;
      const g = (chunk[last - 3] << 24) | (chunk[last - 2] << 16) | (chunk[last - 1] << 8) | chunk[last];
      const jump = shift[Math.imul(g, hash) >>> shiftBits];
      if (jump !== 0) {
        s += jump;
        continue;
      }
      const g0 = (chunk[s] << 24) | (chunk[s + 1] << 16) | (chunk[s + 2] << 8) | chunk[s + 3];
      const y = Math.imul(g0, hash) >>> startBits;
      if ((starts[y >>> 5] & (1 << (y & 31))) !== 0) {
        const verdict = this.isStart(chunk, s, limit, g0);
        if (verdict > 0) return s;
        if (verdict < 0) return ~s;
      }
      s++;
    }
    return ~s;
  }

  /**
   * With a short pattern among them, windows jump too little to pay for themselves: test
   * every position instead, its first two bytes exactly, then its first gram.
   */
  private skipBytes(chunk: Uint8Array, start: number, limit: number, skip: SkipTable): number {
    const { hash, startBits, starts, pairs } = skip;
    if (start + GRAM > limit) return ~start;
    for (let s = start, end = limit - GRAM; s <= end; s++) {
      if (pairs[(chunk[s] << 8) | chunk[s + 1]] === 0) continue;
      const g = (chunk[s] << 24) | (chunk[s + 1] << 16) | (chunk[s + 2] << 8) | chunk[s + 3];
      const y = Math.imul(g, hash) >>> startBits;
      if ((starts[y >>> 5] & (1 << (y & 31))) !== 0) {
        const verdict = this.isStart(chunk, s, limit, g);
        if (verdict > 0) return s;
        if (verdict < 0) return ~s;
      }
    }
    return ~(limit - GRAM + 1);
  }

  /**
   * Whether the first GRAM view bytes from chunk index `s` really start some pattern (the
   * bitsets hash, so they can only rule starts out): 1 with `entry` and `entryEnd` set, 0 if
   * not, -1 when a transparent LF pushes the gram past `limit`. `gram` is the four bytes at `s`
   * as one int32.
   */
  private isStart(chunk: Uint8Array, s: number, limit: number, gram: number): number {
    if (s + GRAM <= limit && chunk[s + 1] !== LF && chunk[s + 2] !== LF && chunk[s + 3] !== LF) {
      // No LF after its first byte, and CR or ESC only from `limit` on: the gram is its own view.
      const o = gramState(this.firstGrams!, gram);
      if (o === 0) return 0;
      this.entry = o;
      this.entryEnd = s + GRAM;
      return 1;
    }
    const pool = this.pool;
    const classOf = this.classOf;
    let o = this.root;
    let at = s;
    let gap = -1;
    for (let views = 0; views < GRAM; at++) {
      if (at >= limit) return -1;
      if (chunk[at] === LF && views > 0 && this.lfIsTransparent(at)) {
        // A raw occurrence may hold this LF: the automaton walks the gram, view and raw both.
        if (this.lineFeedInside) {
          this.entry = this.root;
          this.entryEnd = s;
          return 1;
        }
        gap = at;
        continue;
      }
      o = Math.abs(transition(pool, o, classOf[chunk[at]]));
      views++;
    }
    if (pool[o - 1] !== GRAM) return 0;
    if (gap >= 0) this.addGap(this.base + gap, this.base + gap + 1);
    this.entry = o;
    this.entryEnd = at;
    return 1;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
