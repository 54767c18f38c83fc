// Assembles one stream's masked output: merges matched runs into single masks and holds back only undecided bytes.

const EMPTY = new Uint8Array(0);
const NO_WORDS = new DataView(new ArrayBuffer(0));
/** Runs up to this long are copied four bytes at a time in place; longer ones through a native copy. */
const SHORT_COPY = 256;

/** A DataView over exactly `bytes`: reads and writes four unaligned bytes at once. */
function wordsOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The output side of a stream masker. Positions are absolute byte offsets in the stream.
 * A byte is covered when it lies in any reported occurrence; each maximal run of covered
 * bytes (occurrences that overlap or touch merge) becomes one mask. The scanner reports
 * occurrences and a boundary: no occurrence can start before it any more. Everything
 * before the boundary is emitted, except a covered run that ends right at it, which a
 * later occurrence could still extend; everything from the boundary on is held back.
 */
export class MaskedOutput {
  private readonly mask: Uint8Array;
  private readonly maskWords: DataView;
  /** The longest pattern: nothing undecided is ever longer. */
  private readonly maxHold: number;
  /** Everything before this position has been emitted or dropped under a mask. */
  private emitPos = 0;
  /** Pending covered runs, sorted, disjoint and not touching: [runHead, length) are live. */
  private readonly runStart: number[] = [];
  private readonly runEnd: number[] = [];
  private runHead = 0;
  /** Undecided bytes of earlier chunks: [carryStart, carryStart + carryLength). */
  private carry: Uint8Array;
  private carryWords: DataView;
  private carryStart = 0;
  private carryLength = 0;
  /** The chunk being scanned: [chunkStart, chunkStart + chunk.length). */
  private chunk: Uint8Array = EMPTY;
  /** The chunk as a DataView, for word-wide copies here and comparisons in the scan. */
  chunkWords: DataView = NO_WORDS;
  private chunkStart = 0;
  /**
   * This call's output: bytes written so far into `out` (a fresh buffer per call, handed to
   * the caller), then the chunk's stream positions [viewFrom, viewTo), not yet copied: a call
   * with no mask returns that view of the chunk itself.
   */
  private out: Uint8Array = EMPTY;
  private outWords: DataView = NO_WORDS;
  private outLength = 0;
  private viewFrom = 0;
  private viewTo = 0;
  /** Masks emitted so far: one per merged run, counted where a run is settled (never per byte). */
  masksEmitted = 0;

  constructor(mask: Uint8Array, maxHold: number) {
    this.mask = mask;
    this.maskWords = wordsOf(mask);
    this.maxHold = maxHold;
    this.carry = new Uint8Array(Math.min(256, maxHold));
    this.carryWords = wordsOf(this.carry);
  }

  /** Starts a chunk that begins at stream position `start`. */
  begin(chunk: Uint8Array, start: number): void {
    this.chunk = chunk;
    this.chunkWords = chunk.length === 0 ? NO_WORDS : wordsOf(chunk);
    this.chunkStart = start;
  }

  /** The byte at stream position `at`, which must be held (carried or in the current chunk). */
  byteAt(at: number): number {
    return at < this.chunkStart ? this.carry[at - this.carryStart] : this.chunk[at - this.chunkStart];
  }

  /** An occurrence covers [start, end); nothing can start before `boundary` any more. */
  covered(start: number, end: number, boundary: number): void {
    this.settle(boundary, false);
    const starts = this.runStart;
    const ends = this.runEnd;
    // Runs ending at or after `start` overlap or touch this one: they merge.
    while (starts.length > this.runHead && ends[ends.length - 1] >= start) {
      start = Math.min(start, starts.pop()!);
      ends.pop();
    }
    starts.push(start);
    ends.push(end);
  }

  /** Ends the current chunk: returns what is decided before `boundary` and keeps the rest. */
  finish(boundary: number): Uint8Array {
    this.settle(boundary, false);
    const out = this.take();
    this.keep(boundary);
    this.chunk = EMPTY;
    return out;
  }

  /**
   * A command ended but the stream goes on: emits everything up to `end`. The held bytes from
   * `heldFrom` on go out as one mask when `maskHeld` (they may be the start of a secret), else
   * as they are, up to `coverEnd` (bytes after it are transparent ones no pattern holds). The
   * scanner keeps its state, so a secret the next bytes complete is still masked.
   */
  flush(heldFrom: number, end: number, maskHeld: boolean, coverEnd = end): Uint8Array {
    this.begin(EMPTY, end);
    if (maskHeld && heldFrom < coverEnd) this.covered(heldFrom, coverEnd, heldFrom);
    this.settle(end, true);
    return this.take();
  }

  /** Ends the stream: everything is decided. */
  finishStream(end: number): Uint8Array {
    this.begin(EMPTY, end);
    this.settle(end, true);
    const out = this.take();
    this.carry = EMPTY;
    this.carryWords = NO_WORDS;
    return out;
  }

  /**
   * Emits what no future input can change: runs that end before `boundary` and uncovered
   * bytes before it. `final` settles everything.
   */
  private settle(boundary: number, final: boolean): void {
    const starts = this.runStart;
    const ends = this.runEnd;
    let h = this.runHead;
    while (h < starts.length && (final || ends[h] < boundary)) {
      this.literal(this.emitPos, starts[h]);
      this.appendMask();
      this.emitPos = ends[h];
      h++;
    }
    this.masksEmitted += h - this.runHead;
    // Settled runs are dropped in bulk, only once enough pile up, to keep this loop cheap.
    if (h > 64 && h * 2 > starts.length) {
      starts.splice(0, h);
      ends.splice(0, h);
      h = 0;
    }
    this.runHead = h;
    const stop = h < starts.length ? Math.min(boundary, starts[h]) : boundary;
    if (stop > this.emitPos) {
      this.literal(this.emitPos, stop);
      this.emitPos = stop;
    }
  }

  /** Queues the uncovered bytes [from, to), which lie in the carry and/or the current chunk. */
  private literal(from: number, to: number): void {
    if (from >= to) return;
    if (from < this.carryStart || to > this.chunkStart + this.chunk.length) {
      throw new Error("masker: internal error, bytes to emit are no longer held");
    }
    if (from < this.chunkStart) {
      const upTo = Math.min(to, this.chunkStart);
      this.flushView();
      this.copy(this.carry, this.carryWords, from - this.carryStart, upTo - this.carryStart);
      from = upTo;
    }
    if (from >= to) return;
    // Literals come in stream order: one that goes on from the pending view extends it.
    if (this.viewTo !== from || this.viewTo === this.viewFrom) {
      this.flushView();
      this.viewFrom = from;
    }
    this.viewTo = to;
  }

  private appendMask(): void {
    this.flushView();
    const mask = this.mask;
    this.copy(mask, this.maskWords, 0, mask.length);
  }

  /** Copies the pending view of the chunk into `out`. */
  private flushView(): void {
    if (this.viewTo === this.viewFrom) return;
    this.copy(this.chunk, this.chunkWords, this.viewFrom - this.chunkStart, this.viewTo - this.chunkStart);
    this.viewFrom = this.viewTo;
  }

  /** Appends source[from, to) to `out`, growing it as needed. */
  private copy(source: Uint8Array, words: DataView, from: number, to: number): void {
    const length = to - from;
    let at = this.outLength;
    if (at + length > this.out.length) {
      // Masks may make the output longer than the chunk; most calls fit in the first size.
      const grown = new Uint8Array(Math.max(at + length, this.out.length * 2, this.chunk.length + this.carryLength + 256));
      grown.set(this.out.subarray(0, at));
      this.out = grown;
      this.outWords = wordsOf(grown);
    }
    const out = this.out;
    if (length > SHORT_COPY) out.set(source.subarray(from, to), at);
    else {
      // Short runs (a mask, the bytes between two secrets) copy faster in place than through a new view.
      const outWords = this.outWords;
      let k = from;
      for (; k + 4 <= to; k += 4, at += 4) outWords.setInt32(at, words.getInt32(k, true), true);
      for (; k < to; k++) out[at++] = source[k]!;
    }
    this.outLength += length;
  }

  private take(): Uint8Array {
    let out: Uint8Array;
    if (this.outLength === 0) {
      // Nothing masked or carried: a view of the chunk itself (or nothing).
      out = this.viewTo === this.viewFrom ? EMPTY : this.chunk.subarray(this.viewFrom - this.chunkStart, this.viewTo - this.chunkStart);
    } else {
      // The caller gets its own buffer (carry and mask bytes must not escape as shared views).
      this.flushView();
      out = this.out.subarray(0, this.outLength);
      this.out = EMPTY;
      this.outWords = NO_WORDS;
      this.outLength = 0;
    }
    this.viewFrom = this.viewTo = 0;
    return out;
  }

  /** Keeps [boundary, end of chunk), the bytes a later occurrence may still claim. */
  private keep(boundary: number): void {
    const end = this.chunkStart + this.chunk.length;
    const length = end - boundary;
    if (boundary < this.carryStart || length > this.maxHold) {
      throw new Error("masker: internal error, held bytes out of range");
    }
    if (length > this.carry.length) {
      // Grown on demand: most streams never hold more than a few bytes.
      const grown = new Uint8Array(Math.min(this.maxHold, Math.max(length, this.carry.length * 2)));
      grown.set(this.carry.subarray(0, this.carryLength));
      this.carry = grown;
      this.carryWords = wordsOf(grown);
    }
    if (boundary >= this.chunkStart) {
      this.carry.set(this.chunk.subarray(boundary - this.chunkStart));
    } else {
      this.carry.copyWithin(0, boundary - this.carryStart, this.carryLength);
      this.carry.set(this.chunk, this.chunkStart - boundary);
    }
    this.carryStart = boundary;
    this.carryLength = length;
  }
}
