// Property tests for the streaming masker: random secrets, random output, random chunking.

import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createMaskSet, derivedForms, MASK, type MaskSet } from "../server/domain/masker.js";
import { trimBreaks } from "../server/domain/masker/forms.js";

const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");
const MASK_BYTES = new Set(utf8(MASK));
const codePoints = (s: string): number => [...s].length;

/** The patterns a mask set compiles, as the implementation derives them. */
function patternsOf(values: readonly string[], minLength: number): Buffer[] {
  return [...new Set(values)]
    .filter((v) => v !== "" && codePoints(trimBreaks(v)) >= minLength)
    .flatMap((v) => derivedForms(v, minLength).map((p) => Buffer.from(p)));
}

/**
 * The masker's view of `raw`, written out the slow way (see server/domain/masker/stream.ts):
 * without SGR/EL escapes, and without each LF (and a CR right before it) that ends a line of
 * 64 bytes or more. `at[k]` is the raw index of view byte k.
 */
function viewOf(raw: Buffer): { view: Buffer; at: number[] } {
  const keep = new Uint8Array(raw.length).fill(1);
  for (const m of raw.toString("latin1").matchAll(/\x1b\[[0-9;]{0,32}[mK]/g)) keep.fill(0, m.index, m.index + m[0].length);
  for (let q = 64; q < raw.length; q++) {
    if (raw[q] !== 10 || raw.subarray(q - 64, q).includes(10)) continue;
    keep[q] = 0;
    if (raw[q - 1] === 13) keep[q - 1] = 0;
  }
  const at: number[] = [];
  for (let q = 0; q < raw.length; q++) if (keep[q] === 1) at.push(q);
  return { view: Buffer.from(at.map((q) => raw[q]!)), at };
}

/**
 * Which input bytes lie inside some occurrence of some pattern, in the raw bytes or in the
 * view (from its first to its last byte): transparency may only add occurrences, never hide one.
 */
function coverage(input: Buffer, patterns: readonly Buffer[]): Uint8Array {
  const { view, at } = viewOf(input);
  const covered = new Uint8Array(input.length);
  for (const p of patterns) {
    for (let k = input.indexOf(p); k >= 0; k = input.indexOf(p, k + 1)) covered.fill(1, k, k + p.length);
    for (let k = view.indexOf(p); k >= 0; k = view.indexOf(p, k + 1)) covered.fill(1, at[k], at[k + p.length - 1]! + 1);
  }
  return covered;
}

/**
 * Where the bytes a stream must still hold after `seen` begin: an unfinished escape at the
 * end (it may turn out transparent), the longest raw tail or view tail that is a proper start
 * of a pattern (or a whole one, which could still grow: `prefixes` decides), and, for a CR at
 * the end of a line long enough that an LF after it is transparent, a view tail before the CR.
 */
function heldFrom(seen: Buffer, prefixes: ReadonlySet<string>, longest: number): number {
  let end = seen.length;
  const unfinished = /\x1b(\[[0-9;]{0,31})?$/.exec(seen.toString("latin1"));
  if (unfinished !== null) end = unfinished.index;
  const tailOf = (text: string, at: (k: number) => number, upTo: number): number => {
    let from = upTo;
    for (let k = text.length - 1; k >= Math.max(0, text.length - longest); k--) if (prefixes.has(text.slice(k))) from = at(k);
    return from;
  };
  const viewTail = (upTo: number): number => {
    const { view, at } = viewOf(seen.subarray(0, upTo));
    return tailOf(view.toString("latin1"), (k) => at[k]!, upTo);
  };
  let from = Math.min(end, viewTail(end), tailOf(seen.toString("latin1"), (k) => k, seen.length));
  // Only a CR that is the last byte seen: with any byte after it (an escape's ESC too), it is decided.
  const cr = seen.length - 1;
  // An LF at cr + 1 would be transparent (viewOf): the 64 bytes before it, the CR among them, hold no LF.
  if (cr >= 63 && seen[cr] === 13 && !seen.subarray(cr - 63, cr).includes(10)) {
    const before = viewTail(cr);
    if (before < cr) from = Math.min(from, before);
  }
  return from;
}

/** The contract's output: every maximal run of covered bytes becomes one mask. */
function referenceMask(input: Buffer, covered: Uint8Array): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; ) {
    let j = i;
    while (j < input.length && covered[j] === covered[i]) j++;
    parts.push(covered[i] === 1 ? utf8(MASK) : input.subarray(i, j));
    i = j;
  }
  return Buffer.concat(parts);
}

/** Streams `input` through a fresh stream, cut into pieces of the given sizes (the rest last). */
function streamMask(set: MaskSet, input: Buffer, sizes: readonly number[]): { out: Buffer; pushes: { end: number; got: Buffer }[] } {
  const stream = set.stream();
  const pushes: { end: number; got: Buffer }[] = [];
  let at = 0;
  for (const size of [...sizes, input.length]) {
    const end = Math.min(input.length, at + size);
    pushes.push({ end, got: Buffer.from(stream.push(input.subarray(at, end))) });
    at = end;
  }
  const last = Buffer.from(stream.end());
  return { out: Buffer.concat([...pushes.map((p) => p.got), last]), pushes };
}

const chars = (s: string): string[] => [...s];
const ALNUM = chars("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));

/** Secrets of every shape: tokens, tiny alphabets (overlaps, periodic), printable, raw bytes, any code point. */
const secretArb = fc.oneof(
  fc.string({ unit: fc.constantFrom(...ALNUM), minLength: 4, maxLength: 14 }),
  fc.string({ unit: fc.constantFrom(...ALNUM), minLength: 20, maxLength: 40 }),
  fc.string({ unit: fc.constantFrom("a", "b"), minLength: 3, maxLength: 9 }),
  fc.string({ unit: fc.constantFrom(...PRINTABLE), minLength: 1, maxLength: 12 }),
  fc.uint8Array({ minLength: 2, maxLength: 10 }).map((b) => Buffer.from(b).toString("latin1")),
  fc.string({ unit: "binary", minLength: 2, maxLength: 6 }),
  fc.string({ unit: fc.constantFrom(...ALNUM, "\n", "\r\n"), minLength: 6, maxLength: 20 }),
  // Quotes, backslashes, whitespace runs, non-ASCII, control characters: the shell and repr forms.
  fc.string({ unit: fc.constantFrom("a", "B", "7", " ", "  ", "\t", "'", '"', "\\", "$", "`", "é", "😀", "\n", "\u0001"), minLength: 4, maxLength: 16 }),
);

// Transparent bytes (stream.ts): colour codes, and line breaks, which are transparent after a line of 64 bytes.
const TRANSPARENT = ["\x1b[01;31m\x1b[K", "\x1b[m\x1b[K", "\x1b[0m", "\n", "\r\n"].map(utf8);
const LONG_LINE = utf8("L".repeat(64));

/** Encodings built with Node's encoders, independently of the masker's own derivations. */
function independentForms(value: string): Buffer[] {
  // Line breaks at a value's ends are not masked (they are not secret), so they are no part of its forms.
  const secret = trimBreaks(value);
  const forms = [
    utf8(secret),
    utf8(utf8(secret).toString("base64")),
    utf8(utf8(secret).toString("base64url")),
    utf8(JSON.stringify(secret).slice(1, -1)),
  ];
  try {
    forms.push(utf8(encodeURIComponent(secret)));
  } catch {
    // A lone surrogate has no encodeURIComponent form.
  }
  return forms;
}

/** Output made of random bytes, secrets in some encoded form, base64 of text holding a secret, and partial secrets. */
function outputArb(secrets: readonly string[], minLength: number): fc.Arbitrary<Buffer> {
  const forms = [...patternsOf(secrets, minLength), ...secrets.flatMap(independentForms)];
  const pieces: fc.Arbitrary<Buffer>[] = [fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b))];
  if (forms.length > 0) {
    const form = fc.constantFrom(...forms);
    pieces.push(
      form,
      form.chain((f) => fc.nat(f.length).map((n) => f.subarray(0, n))),
      fc
        .tuple(fc.uint8Array({ maxLength: 5 }), fc.constantFrom(...secrets), fc.uint8Array({ maxLength: 5 }))
        .map(([a, s, b]) => utf8(Buffer.concat([a, utf8(s), b]).toString("base64"))),
      // A form cut by a colour code or, after a long line, by a line break.
      fc
        .tuple(form, fc.nat(), fc.constantFrom(...TRANSPARENT))
        .map(([f, k, t]) => Buffer.concat([LONG_LINE, f.subarray(0, k % (f.length + 1)), t, f.subarray(k % (f.length + 1))])),
    );
    pieces.push(fc.constantFrom(LONG_LINE, utf8("\x1b["), utf8("\r"), ...TRANSPARENT));
  }
  return fc.array(fc.oneof(...pieces), { maxLength: 12 }).map((parts) => Buffer.concat(parts));
}

const sizesArb = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 20 }),
  fc.constant(Array<number>(400).fill(1)),
);

const caseArb = fc
  .record({
    secrets: fc.array(secretArb, { minLength: 1, maxLength: 4 }),
    minLength: fc.constantFrom(4, 4, 4, 4, 1, 2, 3, 6),
  })
  .chain(({ secrets, minLength }) =>
    fc.record({
      secrets: fc.constant(secrets),
      minLength: fc.constant(minLength),
      output: outputArb(secrets, minLength),
      sizes: sizesArb,
    }),
  );

/** Whether `form` could show up in masked output across a mask's edge without any byte of it leaking. */
const touchesMask = (form: Buffer): boolean =>
  form.length === 0 || MASK_BYTES.has(form[0]!) || MASK_BYTES.has(form[form.length - 1]!) || form.includes(MASK);

describe("masker properties", () => {
  it("streams exactly the reference output, however the output is cut", () => {
    fc.assert(
      fc.property(caseArb, ({ secrets, minLength, output, sizes }) => {
        const set = createMaskSet(secrets, { minLength });
        const expected = referenceMask(output, coverage(output, patternsOf(secrets, minLength)));
        expect(streamMask(set, output, sizes).out.toString("latin1")).toBe(expected.toString("latin1"));
      }),
      { numRuns: 1500, interruptAfterTimeLimit: 120_000 },
    );
  });

  it("emits after every push exactly what is decided, and holds back only what is not", () => {
    fc.assert(
      fc.property(caseArb, ({ secrets, minLength, output, sizes }) => {
        const patterns = patternsOf(secrets, minLength);
        const prefixes = new Set(patterns.flatMap((p) => Array.from({ length: p.length }, (_, n) => p.toString("latin1", 0, n + 1))));
        const longest = Math.max(0, ...patterns.map((p) => p.length));
        const { pushes } = streamMask(createMaskSet(secrets, { minLength }), output, sizes);
        let emitted = "";
        for (const { end, got } of pushes) {
          emitted += got.toString("latin1");
          const seen = output.subarray(0, end);
          // No occurrence can start before `boundary`.
          const boundary = heldFrom(seen, prefixes, longest);
          // A run of covered bytes reaching the boundary may still grow: it and all after it wait.
          const covered = coverage(seen, patterns);
          let cut = boundary;
          while (cut > 0 && covered[cut - 1] === 1) cut--;
          const decided = referenceMask(seen.subarray(0, cut), covered.subarray(0, cut));
          expect(emitted, `after ${end} bytes`).toBe(decided.toString("latin1"));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("never lets a secret or its base64, JSON or percent form through", () => {
    fc.assert(
      fc.property(caseArb, ({ secrets, output, sizes }) => {
        const set = createMaskSet(secrets);
        const { out } = streamMask(set, output, sizes);
        const covered = coverage(output, patternsOf(secrets, 4));
        for (const secret of secrets.filter((s) => codePoints(trimBreaks(s)) >= 4)) {
          for (const form of independentForms(secret)) {
            // Every occurrence in the input lies inside a masked run...
            for (let at = output.indexOf(form); at >= 0; at = output.indexOf(form, at + 1)) {
              expect(covered.subarray(at, at + form.length).every((c) => c === 1)).toBe(true);
            }
            // ...so none is left in the output (unless the mask's own letters could spell it).
            if (!touchesMask(form)) expect(out.includes(form)).toBe(false);
          }
        }
      }),
      { numRuns: 600 },
    );
  });

  it("masks a form however colour codes and long-line breaks cut it", () => {
    fc.assert(
      fc.property(
        secretArb.filter((s) => codePoints(trimBreaks(s)) >= 4),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...TRANSPARENT.slice(0, 3))), { maxLength: 3 }),
        fc.integer({ min: 0, max: 2 }),
        sizesArb,
        (secret, colours, pad, sizes) => {
          // base64 as coreutils writes it: 76 columns, with the value at any alignment.
          const wrapped = Buffer.concat([Buffer.alloc(pad, 0x70), utf8(secret)]).toString("base64").replace(/(.{76})/g, "$1\n");
          const plain = utf8(trimBreaks(secret));
          // Codes go between the value's bytes (right to left, so none lands inside another).
          let coloured = Buffer.from(plain);
          const cuts = colours.map(([k, code]) => [k % (plain.length + 1), code] as const).sort((a, b) => b[0] - a[0]);
          for (const [cut, code] of cuts) coloured = Buffer.concat([coloured.subarray(0, cut), code, coloured.subarray(cut)]);
          const set = createMaskSet([secret]);
          for (const output of [utf8(`${wrapped}\n`), Buffer.concat([utf8("> "), coloured, utf8(" <")])]) {
            const { out } = streamMask(set, output, sizes);
            expect(out.toString("latin1")).toBe(referenceMask(output, coverage(output, patternsOf([secret], 4))).toString("latin1"));
            expect(out.includes(MASK)).toBe(true);
          }
          // Every 4-byte run of the value between the colour codes is gone.
          const { out } = streamMask(set, Buffer.concat([utf8("> "), coloured, utf8(" <")]), sizes);
          const shown = out.toString("latin1").replaceAll(MASK, "\0");
          const raw = plain.toString("latin1");
          for (let k = 0; k + 4 <= raw.length; k++) if (!/[\x00-\x20\x7f-\xff]/.test(raw.slice(k, k + 4))) expect(shown).not.toContain(raw.slice(k, k + 4));
        },
      ),
      { numRuns: 400 },
    );
  });

  it("masks every base64 character fixed by a secret, at every alignment", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...ALNUM), minLength: 4, maxLength: 30 }),
        fc.uint8Array({ maxLength: 8 }),
        fc.uint8Array({ maxLength: 8 }),
        fc.boolean(),
        (secret, before, after, url) => {
          const encoded = utf8(Buffer.concat([before, utf8(secret), after]).toString(url ? "base64url" : "base64"));
          const first = Math.ceil((before.length * 8) / 6);
          const last = Math.floor(((before.length + secret.length) * 8) / 6);
          const covered = coverage(encoded, patternsOf([secret], 4));
          expect(covered.subarray(first, last).every((c) => c === 1)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("returns output over an alphabet no form can use at once and byte for byte", () => {
    // Secrets over [A-Z0-9]: every derived form uses only base64 letters, digits, + / = - _ and %.
    const secrets = fc.array(fc.string({ unit: fc.constantFrom(...chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")), minLength: 4, maxLength: 16 }), { minLength: 1, maxLength: 5 });
    // ESC too: the scan holds an escape at a chunk's end until it knows whether it is a colour code.
    const outside = Array.from({ length: 256 }, (_, b) => b).filter((b) => b !== 0x1b && !/[A-Za-z0-9+/=_%-]/.test(String.fromCharCode(b)));
    const text = fc.array(fc.constantFrom(...outside), { maxLength: 300 }).map((b) => Buffer.from(b));
    fc.assert(
      fc.property(secrets, text, sizesArb, (values, output, sizes) => {
        const { out, pushes } = streamMask(createMaskSet(values), output, sizes);
        expect(out.equals(output)).toBe(true);
        let start = 0;
        for (const { end, got } of pushes) {
          expect(got.equals(output.subarray(start, end))).toBe(true);
          start = end;
        }
      }),
      { numRuns: 300 },
    );
  });

  it("holds back exactly the longest tail that could still start a secret, and returns the rest untouched", () => {
    // Output over the secrets' own letters, kept only when no pattern occurs in it.
    const alphabet = chars("abcAB+/=\n");
    const values = fc.array(fc.string({ unit: fc.constantFrom(...alphabet), minLength: 4, maxLength: 8 }), { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(
        values,
        fc.array(fc.constantFrom(...alphabet), { maxLength: 120 }).map((c) => utf8(c.join(""))),
        sizesArb,
        (secrets, output, sizes) => {
          const patterns = patternsOf(secrets, 4);
          fc.pre(coverage(output, patterns).every((c) => c === 0));
          const proper = new Set(patterns.flatMap((p) => Array.from({ length: p.length - 1 }, (_, n) => p.toString("latin1", 0, n + 1))));
          const longest = Math.max(0, ...patterns.map((p) => p.length));
          const { out, pushes } = streamMask(createMaskSet(secrets), output, sizes);
          expect(out.equals(output)).toBe(true);
          let emitted = 0;
          for (const { end, got } of pushes) {
            emitted += got.length;
            expect(emitted, `after ${end} bytes`).toBe(heldFrom(output.subarray(0, end), proper, longest));
          }
        },
      ),
      { numRuns: 400 },
    );
  });
  it("masks secret-dense logs exactly as the reference does, however the chunks cut the values", () => {
    // Like bench/gap.ts's dense logs: one of 100 declared secrets (prefixes of one another
    // among them: sk-1-... and sk-10-...) on nearly every line, raw or in a derived form, lines
    // long enough that their LF is transparent or not, values wrapped across such an LF, cut by
    // colour codes, touching each other, or begun and not finished.
    const hex = (i: number): string => createHash("sha256").update(`dense-${i}`).digest("hex").slice(0, 28);
    const secrets = Array.from({ length: 100 }, (_, i) => (i % 10 === 9 ? `pw-${i}/${hex(i).slice(0, 12)}+"&'x` : `sk-${i}-${hex(i)}`));
    const set = createMaskSet(secrets);
    const patterns = patternsOf(secrets, 4);
    const forms = (secret: string, kind: number, align: number): string => {
      const b64 = Buffer.concat([Buffer.alloc(align, 0x61), utf8(secret)]).toString(kind === 2 ? "base64url" : "base64");
      return [secret, b64, b64, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)][kind]!;
    };
    const lineArb = fc
      .record({
        secret: fc.nat(99),
        other: fc.nat(99),
        kind: fc.nat(4),
        align: fc.nat(2),
        shape: fc.nat(6),
        cut: fc.nat(),
        head: fc.nat(50),
        width: fc.integer({ min: 20, max: 100 }),
        crlf: fc.boolean(),
      })
      .map(({ secret, other, kind, align, shape, cut, head, width, crlf }) => {
        const form = forms(secrets[secret]!, kind, align);
        const k = cut % (form.length + 1);
        const value = [
          form,
          `${form}${forms(secrets[other]!, 0, 0)}`, // two touching
          form.slice(0, k), // begun, not finished
          `${form.slice(0, k)}\x1b[01;31m\x1b[K${form.slice(k)}\x1b[m\x1b[K`, // cut by colour codes
          `${"L".repeat(Math.max(0, 64 - k))}${form.slice(0, k)}${crlf ? "\r\n" : "\n"}${form.slice(k)}`, // wrapped after a long line
          "z".repeat(form.length), // the clean twin's filler
          form,
        ][shape]!;
        const line = `${"2026-11-25T10:00:00Z INFO auth ok key=".slice(0, head)}${value} n=${secret}`;
        return `${line.padEnd(width, ".")}${crlf ? "\r\n" : "\n"}`;
      });
    const chunkSizes = fc.oneof(
      fc.array(fc.integer({ min: 1, max: 120 }), { maxLength: 200 }),
      fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 400 }),
      fc.constant([4096]),
    );
    fc.assert(
      fc.property(fc.array(lineArb, { minLength: 1, maxLength: 80 }), chunkSizes, (lines, sizes) => {
        const output = utf8(lines.join(""));
        const expected = referenceMask(output, coverage(output, patterns));
        expect(streamMask(set, output, sizes).out.toString("latin1")).toBe(expected.toString("latin1"));
      }),
      { numRuns: 150 },
    );
  });
});
