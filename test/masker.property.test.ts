// Property tests for the streaming masker: random secrets, random output, random chunking.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createMaskSet, derivedForms, MASK, type MaskSet } from "../server/domain/masker.js";

const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");
const MASK_BYTES = new Set(utf8(MASK));
const codePoints = (s: string): number => [...s].length;

/** The patterns a mask set compiles, as the implementation derives them. */
function patternsOf(values: readonly string[], minLength: number): Buffer[] {
  return [...new Set(values)]
    .filter((v) => v !== "" && codePoints(v) >= minLength)
    .flatMap((v) => derivedForms(v, minLength).map((p) => Buffer.from(p)));
}

/** Which input bytes lie inside some occurrence of some pattern, found the slow and obvious way. */
function coverage(input: Buffer, patterns: readonly Buffer[]): Uint8Array {
  const covered = new Uint8Array(input.length);
  for (const p of patterns) {
    for (let at = input.indexOf(p); at >= 0; at = input.indexOf(p, at + 1)) covered.fill(1, at, at + p.length);
  }
  return covered;
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
);

/** Encodings built with Node's encoders, independently of the masker's own derivations. */
function independentForms(secret: string): Buffer[] {
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
    );
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
      { numRuns: 1500 },
    );
  });

  it("emits after every push exactly what is decided, and holds back only what is not", () => {
    fc.assert(
      fc.property(caseArb, ({ secrets, minLength, output, sizes }) => {
        const patterns = patternsOf(secrets, minLength);
        const prefixes = new Set(patterns.flatMap((p) => Array.from({ length: p.length }, (_, n) => p.toString("latin1", 0, n + 1))));
        const longest = Math.max(0, ...patterns.map((p) => p.length));
        const text = output.toString("latin1");
        const { pushes } = streamMask(createMaskSet(secrets, { minLength }), output, sizes);
        let emitted = "";
        for (const { end, got } of pushes) {
          emitted += got.toString("latin1");
          const seen = output.subarray(0, end);
          // No occurrence can start before `boundary`: the longest tail that is a pattern prefix starts there.
          let boundary = end;
          for (let from = end - 1; from >= Math.max(0, end - longest); from--) {
            if (prefixes.has(text.slice(from, end))) boundary = from;
          }
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
        for (const secret of secrets.filter((s) => codePoints(s) >= 4)) {
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
    const outside = Array.from({ length: 256 }, (_, b) => b).filter((b) => !/[A-Za-z0-9+/=_%-]/.test(String.fromCharCode(b)));
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
          const text = output.toString("latin1");
          const { out, pushes } = streamMask(createMaskSet(secrets), output, sizes);
          expect(out.equals(output)).toBe(true);
          let emitted = 0;
          for (const { end, got } of pushes) {
            let held = 0;
            for (let len = 1; len <= end; len++) if (proper.has(text.slice(end - len, end))) held = len;
            emitted += got.length;
            expect(emitted, `after ${end} bytes`).toBe(end - held);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
