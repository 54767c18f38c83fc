// Masks secret values, and the encoded forms they take, in streamed command output.

import { type Automaton, compileAutomaton } from "./masker/automaton.js";
import { codePointLength, derivedForms, trimBreaks } from "./masker/forms.js";
import { AutomatonStream } from "./masker/stream.js";

export { MAX_PATTERN_LENGTH } from "./masker/automaton.js";
export { derivedForms } from "./masker/forms.js";

/** What every occurrence becomes; occurrences that overlap or touch become a single mask. */
export const MASK = "<secret-hidden>";

const MASK_BYTES = new TextEncoder().encode(MASK);

/** Options for {@link createMaskSet}. */
export interface MaskSetOptions {
  /** Values with fewer code points than this are not masked, and derived forms shorter than this (in bytes) are skipped. Default 4. */
  readonly minLength?: number;
}

/** The compiled patterns of one conversation's secrets; shared by all of its streams. */
export interface MaskSet {
  /** Values shorter than minLength: injected but not masked (caller reports them). */
  readonly unmaskedValues: readonly string[];
  /** Size of the compiled automaton, for logs and benchmarks (never a value). */
  readonly stats: MaskSetStats;
  /** A new streaming masker for one output stream (a conversation's stdout and stderr each get their own, for its whole life). */
  stream(): StreamMasker;
}

/** Counts describing a compiled {@link MaskSet}. */
export interface MaskSetStats {
  /** Number of byte patterns compiled (values, lines and their encoded forms). */
  readonly patterns: number;
  readonly states: number;
  readonly denseStates: number;
  /** Memory held by the automaton and its skip table. */
  readonly bytes: number;
  /** The most bytes a stream ever holds back waiting to know whether they start a secret. */
  readonly maxHoldBack: number;
}

/**
 * A streaming masker for one output stream. It fails closed: if anything goes wrong inside,
 * push() and end() throw, and every later call throws too. The caller must then drop the
 * stream and send nothing more of it, since the bytes in flight were never checked.
 */
export interface StreamMasker {
  /**
   * Feeds a chunk; returns the bytes that are now safe to emit (may be empty). Held back
   * are only the bytes that could still begin a secret, and the mask of a secret that ends
   * the chunk (the next bytes could extend it). The result may be a view of `chunk`.
   */
  push(chunk: Uint8Array): Uint8Array;
  /**
   * A command ended but the stream goes on (one stream per conversation output): returns
   * every byte still held. Held bytes that could begin a secret (at least minLength bytes of
   * a pattern's start) come out as one mask, fewer as they are; a pending mask comes out
   * too. The scanning state is kept, so a secret the stream's next bytes complete (a
   * background job printing slowly) is still masked from there on.
   */
  flush(): Uint8Array;
  /** End of stream: returns the remaining held-back bytes, masked. */
  end(): Uint8Array;
  /** How many masks this stream has emitted so far (occurrences that touch count once). */
  readonly masksApplied: number;
}

/**
 * A mask set as plain data: typed arrays, numbers and strings only, so it can be compiled in
 * another thread and handed over by structured clone (its arrays transferred, not copied).
 */
export interface CompiledMaskSet {
  readonly unmaskedValues: readonly string[];
  readonly stats: MaskSetStats;
  readonly automaton: Automaton;
  readonly minLength: number;
}

/**
 * Compiles the patterns for a set of secret values (derived forms included). Build once per
 * conversation. Throws a RangeError if a value's longest form exceeds MAX_PATTERN_LENGTH
 * bytes (2 MiB; a 64 KiB value stays far below), so such a set fails before anything runs.
 */
export function createMaskSet(values: readonly string[], options: MaskSetOptions = {}): MaskSet {
  return maskSetOf(compileMaskSet(values, options));
}

/** The compiling half of createMaskSet: the set as data (see CompiledMaskSet). Throws as createMaskSet does. */
export function compileMaskSet(values: readonly string[], options: MaskSetOptions = {}): CompiledMaskSet {
  const minLength = options.minLength ?? 4;
  if (!Number.isInteger(minLength) || minLength < 1) {
    throw new RangeError("minLength must be a positive integer");
  }
  const unmaskedValues: string[] = [];
  const patterns: Uint8Array[] = [];
  for (const value of new Set(values)) {
    if (value === "") continue;
    // A trailing newline (`echo value | veil secret set`) is not part of what must stay hidden.
    if (codePointLength(trimBreaks(value)) < minLength) unmaskedValues.push(value);
    else patterns.push(...derivedForms(value, minLength));
  }
  const automaton = compileAutomaton(patterns);
  const skip = automaton.skip;
  const stats: MaskSetStats = {
    patterns: automaton.patterns,
    states: automaton.states,
    denseStates: automaton.denseStates,
    bytes:
      automaton.pool.byteLength +
      automaton.chainBytes.byteLength +
      (skip ? skip.shift.byteLength + skip.starts.byteLength + skip.pairs.byteLength : 0) +
      (automaton.firstGrams ? automaton.firstGrams.grams.byteLength + automaton.firstGrams.states.byteLength : 0),
    maxHoldBack: automaton.maxDepth,
  };
  return { unmaskedValues, stats, automaton, minLength };
}

/** The mask set a compiled one describes (in the thread that will mask with it). */
export function maskSetOf(compiled: CompiledMaskSet): MaskSet {
  const { automaton, minLength } = compiled;
  return {
    unmaskedValues: Object.freeze([...compiled.unmaskedValues]),
    stats: Object.freeze({ ...compiled.stats }),
    stream: () => new AutomatonStream(automaton, MASK_BYTES, minLength),
  };
}

/** The memory a compiled set's arrays hold, each buffer once: what a thread hands over instead of copying. */
export function buffersOf(compiled: CompiledMaskSet): ArrayBuffer[] {
  const { automaton } = compiled;
  const arrays = [automaton.classOf, automaton.pool, automaton.chainBytes, automaton.skip?.shift, automaton.skip?.starts, automaton.skip?.pairs, automaton.firstGrams?.grams, automaton.firstGrams?.states];
  return [...new Set(arrays.flatMap((a) => (a === undefined ? [] : [a.buffer as ArrayBuffer])))];
}

/** Masks a whole buffer, or a sequence of chunks, through one stream: for one-shot callers and tests. */
export function maskAll(set: MaskSet, input: Uint8Array | Iterable<Uint8Array>): Uint8Array {
  const stream = set.stream();
  const parts: Uint8Array[] = [];
  for (const chunk of input instanceof Uint8Array ? [input] : input) parts.push(stream.push(chunk));
  parts.push(stream.end());
  return Buffer.concat(parts);
}
