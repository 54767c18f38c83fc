// Compiles byte patterns into an Aho-Corasick automaton over byte classes, and the skip table that goes with it.
//
// Everything the automaton reads lives in one Int32Array, `pool`. A state sits at an offset
// `o` behind a two-word header:
//   pool[o - 2]  info:  (longest pattern ending here) << 10 | (pair count) << 1 | (1 if sparse)
//   pool[o - 1]  depth: length of the longest input suffix that is still a pattern prefix
// A dense state stores its whole row: pool[o + class] = next. A sparse state (most states:
// deep ones have a single child) stores pool[o] = offset of its failure state, then its
// children as (class, next) pairs; any other class is looked up in the failure state, as in
// textbook Aho-Corasick. The root and its children are dense, so a lookup always ends.
// States are laid out depth-first, so following one pattern reads memory in order.
// A next state is stored as +o when the scan can simply carry on (a dense state that ends
// no pattern and is at least `shallowBelow` deep) and as -o when it must look: a match, a
// sparse state, or a state so shallow that the skip loop can take over again.
// A sparse state with one child stores its pair's class word as class | (chain length) << 24,
// where the chain length counts the steps from it, one child after another, that the scan
// only has to follow (no match, no LF/CR/ESC, deep enough to stay out of the skip loop).
// Such a child sits CHAIN_STRIDE entries on, so the bytes of a chain's steps lie in order
// in `chainBytes` from index o / CHAIN_STRIDE: the scan compares them with the input four
// bytes at a time instead of taking one transition per byte.

import { buildSkipTable, GRAM, MAX_WINDOW, type SkipTable } from "./skip.js";

/** Bytes whose classes are 1, 2 and 3 in every automaton: LF, CR and ESC (see stream.ts). */
export const SPECIAL_BYTES = [0x0a, 0x0d, 0x1b] as const;

/** `info >> MATCH_SHIFT` is the length of the longest pattern ending in a state (0: none). */
export const MATCH_SHIFT = 10;
const MAX_PAIRS = (1 << (MATCH_SHIFT - 1)) - 1;
/** Pool entries of a sparse state with one child (header, failure, pair): its child follows right after. */
export const CHAIN_STRIDE = 5;
/** The class of a pair: `pool[k] & CLASS_MASK` (one-child states keep their chain in the bits above). */
export const CLASS_MASK = 0xffff;
const MAX_CHAIN = 127;
/** Longer patterns would not fit in `info` (a 64 KiB value's longest form is under 400 KiB). */
export const MAX_PATTERN_LENGTH = 2 ** (31 - MATCH_SHIFT) - 1;

/** A compiled automaton; read by the stream masker, never mutated after compilation. */
export interface Automaton {
  /** Skips stretches where no pattern starts; null when the shortest pattern is under a gram. */
  readonly skip: SkipTable | null;
  /** States shallower than this hand the scan back to the skip loop (0 without a skip table). */
  readonly shallowBelow: number;
  /** Byte to class; class 0 is every byte that occurs in no pattern (it always leads to the root). */
  readonly classOf: Uint16Array;
  /** Number of classes, the width of a dense row. */
  readonly classes: number;
  /** States and transitions, in the layout described at the top of this file. */
  readonly pool: Int32Array;
  /** The byte of each chain step (see the top of this file), at its state's offset / CHAIN_STRIDE. */
  readonly chainBytes: Uint8Array;
  /** Each pattern's first gram and the state it leads to, for the skip loop's candidates (null without a skip table). */
  readonly firstGrams: GramIndex | null;
  /** Offset of the root state. */
  readonly root: number;
  /** Length of the longest pattern: the most a stream ever holds back. */
  readonly maxDepth: number;
  /** Whether some pattern holds a line feed (then a raw occurrence may run through a transparent one). */
  readonly lineFeedInside: boolean;
  /** Number of distinct patterns. */
  readonly patterns: number;
  /** Number of states, and how many of them have dense rows. */
  readonly states: number;
  readonly denseStates: number;
}

/**
 * An open-addressing table from a gram (four bytes as one int32, the skip loop's way) to the
 * state at depth GRAM that the gram leads to from the root: one probe where walking it took
 * four transitions, on every candidate the skip loop finds.
 */
export interface GramIndex {
  /** `Math.imul(gram, hash) >>> bits` is the first slot to probe; slots follow linearly. */
  readonly hash: number;
  readonly bits: number;
  readonly grams: Int32Array;
  /** The state's offset, 0 for an empty slot (no state sits at offset 0). */
  readonly states: Int32Array;
}

/** Tuning for {@link compileAutomaton}; the defaults were picked with bench/masker.ts. */
export interface CompileOptions {
  /** A state with more children than this gets a dense row (while the budget lasts). */
  readonly sparseLimit?: number;
  /** Most Int32 entries spent on dense rows; beyond it states stay sparse (slower, never wrong). */
  readonly denseBudget?: number;
}

/**
 * The next state from state `o` on class `c`: returns the link as stored (encoded as
 * described at the top of this file; plain offsets while compiling).
 */
export function transition(pool: Int32Array, o: number, c: number): number {
  for (;;) {
    const info = pool[o - 2];
    if ((info & 1) === 0) return pool[o + c];
    for (let k = o + 1, end = k + 2 * ((info >> 1) & MAX_PAIRS); k < end; k += 2) {
      if ((pool[k] & CLASS_MASK) === c) return pool[k + 1];
    }
    o = pool[o];
  }
}

/** The state `gram` (a pattern's first GRAM bytes as one int32) leads to from the root, or 0 when it starts no pattern. */
export function gramState(index: GramIndex, gram: number): number {
  const { grams, states } = index;
  const mask = states.length - 1;
  for (let x = Math.imul(gram, index.hash) >>> index.bits; ; x = (x + 1) & mask) {
    const o = states[x];
    if (o === 0 || grams[x] === gram) return o;
  }
}

/**
 * Builds the automaton that finds every occurrence of every pattern; empty patterns are
 * ignored. Throws a RangeError for a pattern over MAX_PATTERN_LENGTH bytes.
 */
export function compileAutomaton(input: readonly Uint8Array[], options: CompileOptions = {}): Automaton {
  const sparseLimit = Math.min(options.sparseLimit ?? 8, MAX_PAIRS);
  const denseBudget = options.denseBudget ?? 1 << 22;
  const patterns = input.filter((p) => p.length > 0);

  const classOf = new Uint16Array(256);
  // Line feed, carriage return and escape always have their own classes (1, 2, 3), whose links are
  // always stored as "look": the scan decides there whether the byte is transparent (stream.ts).
  SPECIAL_BYTES.forEach((b, k) => {
    classOf[b] = k + 1;
  });
  let classes = 1 + SPECIAL_BYTES.length;
  let maxDepth = 0;
  let minLength = MAX_WINDOW;
  for (const pattern of patterns) {
    if (pattern.length > maxDepth) maxDepth = pattern.length;
    if (pattern.length < minLength) minLength = pattern.length;
    for (const b of pattern) if (classOf[b] === 0) classOf[b] = classes++;
  }
  if (maxDepth > MAX_PATTERN_LENGTH) throw new RangeError(`masker: a pattern is over ${MAX_PATTERN_LENGTH} bytes`);
  const skip = minLength >= GRAM ? buildSkipTable(patterns, minLength) : null;
  const shallowBelow = skip === null ? 0 : GRAM;

  // Pass 1 builds the trie breadth-first from the sorted patterns: a state stands for the
  // run [runStart, runEnd) of sorted patterns that share its prefix, state ids come in
  // breadth-first order and a state's children have consecutive ids.
  // Sorted as latin1 strings (one char per byte, so string order is byte order: the fastest
  // sort at hand), then copied into one flat array, where byte d of pattern k is
  // flat[patternAt[k] + d].
  const sorted = patterns.map((p) => Buffer.from(p.buffer, p.byteOffset, p.length).toString("latin1")).sort();
  const patternAt = new Int32Array(sorted.length + 1);
  for (let k = 0; k < sorted.length; k++) patternAt[k + 1] = patternAt[k] + sorted[k].length;
  const flat = Buffer.alloc(patternAt[sorted.length]);
  for (let k = 0; k < sorted.length; k++) flat.write(sorted[k], patternAt[k], "latin1");
  const lengthOf = (k: number): number => patternAt[k + 1] - patternAt[k];
  let stateCount = 1; // each pattern adds what it does not share with the one before
  for (let k = 0; k < sorted.length; k++) {
    const at = patternAt[k];
    const length = lengthOf(k);
    const nextAt = patternAt[k + 1];
    const nextLength = k + 1 < sorted.length ? lengthOf(k + 1) : 0;
    let shared = 0;
    while (shared < length && shared < nextLength && flat[at + shared] === flat[nextAt + shared]) shared++;
    stateCount += length - shared;
  }
  const runStart = new Int32Array(stateCount);
  const runEnd = new Int32Array(stateCount);
  const label = new Uint16Array(stateCount);
  const labelByte = new Uint8Array(stateCount);
  const depth = new Int32Array(stateCount);
  const terminal = new Uint8Array(stateCount);
  const firstKid = new Int32Array(stateCount + 1);
  const size = new Int32Array(stateCount);
  const dense = new Uint8Array(stateCount);
  runEnd[0] = sorted.length;
  let states = 1;
  let distinct = 0;
  let denseStates = 0;
  let denseEntries = 0;
  for (let s = 0; s < stateCount; s++) {
    const d = depth[s];
    let a = runStart[s];
    const b = runEnd[s];
    // Patterns that end here sort first; equal patterns share the state.
    if (a < b && lengthOf(a) === d) {
      terminal[s] = 1;
      distinct++;
      while (a < b && lengthOf(a) === d) a++;
    }
    firstKid[s] = states;
    while (a < b) {
      const byte = flat[patternAt[a] + d];
      let e = a + 1;
      while (e < b && flat[patternAt[e] + d] === byte) e++;
      label[states] = classOf[byte];
      labelByte[states] = byte;
      runStart[states] = a;
      runEnd[states] = e;
      depth[states] = d + 1;
      states++;
      a = e;
    }
    const kids = states - firstKid[s];
    if (d <= 1 || (kids > sparseLimit && denseEntries + classes <= denseBudget)) {
      size[s] = 2 + classes;
      dense[s] = 1;
      denseStates++;
      denseEntries += classes;
    } else {
      size[s] = 3 + 2 * kids;
    }
  }
  firstKid[stateCount] = states;

  // Offsets, depth-first: a state's first child right after it, so a chain is contiguous.
  const offset = new Int32Array(stateCount);
  const stack = runStart; // free again
  let used = 0;
  let top = 1; // stack[0] = 0, the root
  while (top > 0) {
    const s = stack[--top];
    offset[s] = used + 2;
    used += size[s];
    for (let t = firstKid[s + 1] - 1; t >= firstKid[s]; t--) stack[top++] = t;
  }

  // Pass 2, breadth-first again, so each failure state is filled in before it is needed.
  // Links hold plain offsets until the last pass encodes them.
  const pool = new Int32Array(used);
  const fail = runEnd; // free again: the failure state's offset, per state id
  const root = offset[0];
  for (let s = 0; s < stateCount; s++) {
    const o = offset[s];
    const f = fail[s];
    const d = depth[s];
    const out = terminal[s] === 1 ? d : s === 0 ? 0 : pool[f - 2] >> MATCH_SHIFT;
    const from = firstKid[s];
    const to = firstKid[s + 1];
    pool[o - 1] = d;
    if (dense[s] === 1) {
      pool[o - 2] = out << MATCH_SHIFT;
      if (s === 0) pool.fill(root, o, o + classes);
      else for (let c = 0; c < classes; c++) pool[o + c] = transition(pool, f, c);
      for (let t = from; t < to; t++) pool[o + label[t]] = offset[t];
    } else {
      pool[o - 2] = (out << MATCH_SHIFT) | ((to - from) << 1) | 1;
      pool[o] = f;
      for (let t = from, w = o + 1; t < to; t++, w += 2) {
        pool[w] = label[t];
        pool[w + 1] = offset[t];
      }
    }
    for (let t = from; t < to; t++) fail[t] = s === 0 ? root : transition(pool, f, label[t]);
  }

  const encode = (o: number, c: number): number =>
    pool[o - 2] === 0 && pool[o - 1] >= shallowBelow && (c === 0 || c > SPECIAL_BYTES.length) ? o : -o;
  for (let s = 0; s < stateCount; s++) {
    const o = offset[s];
    const info = pool[o - 2];
    if ((info & 1) === 0) {
      for (let c = 0; c < classes; c++) pool[o + c] = encode(pool[o + c], c);
    } else {
      for (let k = o + 2, end = o + 1 + 2 * ((info >> 1) & MAX_PAIRS); k < end; k += 2) pool[k] = encode(pool[k], pool[k - 1]);
    }
  }

  const chainBytes = markChains(pool, { offset, firstKid, label, labelByte, depth, stateCount, shallowBelow });
  const firstGrams = skip === null ? null : indexFirstGrams(patterns, pool, classOf, root, skip.hash);

  return {
    skip,
    shallowBelow,
    classOf,
    classes,
    pool,
    chainBytes,
    firstGrams,
    root,
    maxDepth,
    lineFeedInside: patterns.some((p) => p.includes(0x0a)),
    patterns: distinct,
    states: stateCount,
    denseStates,
  };
}

/**
 * Records each one-child chain in its states' pair words (see the top of this file), deepest
 * first: breadth-first ids make every child's id larger than its parent's.
 */
function markChains(
  pool: Int32Array,
  t: { offset: Int32Array; firstKid: Int32Array; label: Uint16Array; labelByte: Uint8Array; depth: Int32Array; stateCount: number; shallowBelow: number },
): Uint8Array {
  const { offset, firstKid, label, labelByte, depth, stateCount, shallowBelow } = t;
  const chain = new Uint8Array(stateCount);
  // A one-child state spans CHAIN_STRIDE entries, so no two share an index here.
  const bytes = new Uint8Array(Math.floor(pool.length / CHAIN_STRIDE) + 1);
  for (let s = stateCount - 1; s >= 0; s--) {
    const o = offset[s];
    if (firstKid[s + 1] - firstKid[s] !== 1 || (pool[o - 2] & 1) === 0) continue;
    const kid = firstKid[s];
    const k = offset[kid];
    const plain = label[kid] > SPECIAL_BYTES.length && pool[k - 2] >> MATCH_SHIFT === 0 && depth[kid] >= shallowBelow;
    if (!plain || k !== o + CHAIN_STRIDE) continue;
    chain[s] = Math.min(MAX_CHAIN, 1 + chain[kid]);
    pool[o + 1] |= chain[s] << 24;
    bytes[Math.floor(o / CHAIN_STRIDE)] = labelByte[kid];
  }
  return bytes;
}

/** Indexes the first gram of every pattern (all at least GRAM bytes long) by the state it leads to. */
function indexFirstGrams(patterns: readonly Uint8Array[], pool: Int32Array, classOf: Uint16Array, root: number, hash: number): GramIndex {
  const firsts = new Set<number>();
  for (const p of patterns) firsts.add((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]);
  // At most half full, so a miss ends after a probe or two.
  let bits = 4;
  while (1 << bits < 2 * firsts.size) bits++;
  const grams = new Int32Array(1 << bits);
  const states = new Int32Array(1 << bits);
  const mask = (1 << bits) - 1;
  for (const g of firsts) {
    let o = root;
    for (let k = 24; k >= 0; k -= 8) o = Math.abs(transition(pool, o, classOf[(g >>> k) & 0xff]));
    let x = Math.imul(g, hash) >>> (32 - bits);
    while (states[x] !== 0) x = (x + 1) & mask;
    grams[x] = g;
    states[x] = o;
  }
  return { hash, bits: 32 - bits, grams, states };
}
