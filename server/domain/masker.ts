// Masks secret values, and the encoded forms they take, in streamed command output.

import { compileAutomaton } from "./masker/automaton.js";
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
 * Compiles the patterns for a set of secret values (derived forms included). Build once per
 * conversation. Throws a RangeError if a value's longest form exceeds MAX_PATTERN_LENGTH
 * bytes (2 MiB; a 64 KiB value stays far below), so such a set fails before anything runs.
 */
export function createMaskSet(values: readonly string[], options: MaskSetOptions = {}): MaskSet {
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
  return {
    unmaskedValues: Object.freeze(unmaskedValues),
    stats: Object.freeze(stats),
    stream: () => new AutomatonStream(automaton, MASK_BYTES, minLength),
  };
}

/** Masks a whole buffer, or a sequence of chunks, through one stream: for one-shot callers and tests. */
export function maskAll(set: MaskSet, input: Uint8Array | Iterable<Uint8Array>): Uint8Array {
  const stream = set.stream();
  const parts: Uint8Array[] = [];
  for (const chunk of input instanceof Uint8Array ? [input] : input) parts.push(stream.push(chunk));
  parts.push(stream.end());
  return Buffer.concat(parts);
}
