// Mask sets compiled in their own thread: the same masking as a set compiled in place, without blocking the event loop, and still a set when the thread dies.
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { compileMaskSetOffThread, terminateMaskCompiler } from "../server/domain/mask-compiler.js";
import { createMaskSet, MAX_PATTERN_LENGTH, type MaskSet, maskAll } from "../server/domain/masker.js";

const enc = new TextEncoder();

/** Log-like output with the secrets raw and base64-encoded in it, cut into random chunks. */
function chunks(secrets: string[], lines: number): Uint8Array[] {
  const text = Array.from({ length: lines }, (_, i) => {
    const s = secrets[i % secrets.length]!;
    return i % 3 === 0 ? `line ${i} token=${s} ok` : i % 3 === 1 ? `b64 ${Buffer.from(s).toString("base64")}` : `plain ${i}`;
  }).join("\n");
  const bytes = enc.encode(text);
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + Math.floor(Math.random() * 200);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

const masked = (set: MaskSet, input: Uint8Array[]) => Buffer.from(maskAll(set, input)).toString();

describe("mask sets compiled off the event loop", () => {
  afterAll(() => terminateMaskCompiler());

  it("mask exactly as a set compiled in place", async () => {
    const secrets = Array.from({ length: 50 }, (_, i) => `sk-${i}-${randomBytes(12).toString("hex")}`);
    const input = chunks(secrets, 600);
    const [offThread, inPlace] = [await compileMaskSetOffThread([...secrets, "abc"]), createMaskSet([...secrets, "abc"])];
    expect(offThread.stats).toEqual(inPlace.stats);
    expect(offThread.unmaskedValues).toEqual(["abc"]);
    const out = masked(offThread, input);
    expect(out).toBe(masked(inPlace, input));
    for (const s of secrets) expect(out).not.toContain(s);
    expect(out).toContain("token=<secret-hidden> ok");
  });

  it("answers several compiles at once, each with its own set", async () => {
    const sets = Array.from({ length: 6 }, (_, i) => [`canary-set-${i}-${randomBytes(8).toString("hex")}`]);
    const compiled = await Promise.all(sets.map((values) => compileMaskSetOffThread(values)));
    compiled.forEach((set, i) => {
      expect(masked(set, [enc.encode(`a ${sets[i]![0]} b`)])).toBe("a <secret-hidden> b");
      // Another set's value is not this one's to hide.
      expect(masked(set, [enc.encode(`a ${sets[(i + 1) % 6]![0]} b`)])).toBe(`a ${sets[(i + 1) % 6]![0]} b`);
    });
  });

  it("leaves the event loop free while a large set compiles", async () => {
    const secrets = Array.from({ length: 3000 }, () => randomBytes(24).toString("base64url"));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      const set = await compileMaskSetOffThread(secrets);
      // Compiled in place, the whole compile would have run before any timer fired.
      expect(ticks).toBeGreaterThan(2);
      expect(set.stats.patterns).toBeGreaterThan(3000);
    } finally {
      clearInterval(timer);
    }
  });

  it("refuses a value too long to compile with the RangeError createMaskSet throws", async () => {
    await expect(compileMaskSetOffThread(["x".repeat(MAX_PATTERN_LENGTH + 1)])).rejects.toThrow(RangeError);
    const set = await compileMaskSetOffThread(["canary-after-refusal"]);
    expect(masked(set, [enc.encode("canary-after-refusal!")])).toBe("<secret-hidden>!");
  });

  it("still gives the set when the thread dies under the compile, and the next compile gets a new thread", async () => {
    const secrets = Array.from({ length: 2000 }, () => randomBytes(24).toString("base64url"));
    const compiling = compileMaskSetOffThread(secrets);
    await terminateMaskCompiler();
    const set = await compiling;
    expect(set.stats).toEqual(createMaskSet(secrets).stats);
    expect(masked(set, [enc.encode(`x ${secrets[7]} y`)])).toBe("x <secret-hidden> y");
    const next = await compileMaskSetOffThread(["canary-new-thread"]);
    expect(masked(next, [enc.encode("a canary-new-thread b")])).toBe("a <secret-hidden> b");
  });
});
