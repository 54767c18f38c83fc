// The store contract as tests: registered once per backend (LevelDB, memory, etcd) by test/store-conformance.test.ts.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VeilError } from "../../server/errors.js";
import { type KvChange, KvConflictError, type KvOp, type KvStore, retryOnConflict } from "../../server/store/kv.js";

/** A fresh, empty store for one test, and (on a shared backend) another client of the same store. */
export interface StoreHarness {
  store: KvStore;
  /** A second handle on the same store, as a second server would hold (absent for LevelDB: one process owns it). */
  peer?: () => Promise<KvStore>;
  close(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (text: string) => enc.encode(text);
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : dec.decode(value));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Keys as LevelDB orders them: by their UTF-8 bytes (not by UTF-16 code units, which differ past U+FFFF). */
const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** \0 separators, a 2-, 3- and 4-byte UTF-8 character, and one (U+FF21) whose UTF-16 order differs from its UTF-8 order. */
const SCAN_KEYS = ["s\0a", "s\0a\0b", "s\0b", "s\0é", "s\0日本", "s\0\uff21", "s\0😀", "s\0z", "s\u0001"];

async function collect(iterable: AsyncIterable<[string, Uint8Array]>): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const [k, v] of iterable) out.push([k, dec.decode(v)]);
  return out;
}

async function until(check: () => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await sleep(20);
  }
}

/** Registers the contract's tests for a backend; `skip` (a reason) skips them all. */
export function describeKvStore(name: string, open: () => Promise<StoreHarness>, options: { skip?: string } = {}) {
  describe.skipIf(options.skip !== undefined)(`store contract: ${name}${options.skip !== undefined ? ` (skipped: ${options.skip})` : ""}`, () => {
    let h: StoreHarness;
    let store: KvStore;
    beforeEach(async () => {
      h = await open();
      store = h.store;
    });
    afterEach(async () => {
      await h.close();
    });

    registerReadWrite(() => store);
    registerConflicts(() => store);
    registerLimits(() => store);
    registerScans(() => store);
    registerCoordination(() => store, () => h);
    registerSnapshot(() => store);
  });
}

function registerReadWrite(s: () => KvStore) {
  it("get and getMany: missing keys are undefined; values come back byte for byte, in the order asked", async () => {
    const store = s();
    expect(await store.get("a")).toBeUndefined();
    await store.write([
      { type: "put", key: "a", value: bytes("1") },
      { type: "put", key: "b\0c", value: new Uint8Array([0, 255, 7]) },
      { type: "put", key: "empty", value: new Uint8Array() },
    ]);
    expect(text(await store.get("a"))).toBe("1");
    expect([...((await store.get("b\0c")) ?? [])]).toEqual([0, 255, 7]);
    expect((await store.get("empty"))?.byteLength).toBe(0);
    const many = await store.getMany(["b\0c", "nope", "a", "a"]);
    expect(many.map((v) => (v === undefined ? undefined : [...v]))).toEqual([[0, 255, 7], undefined, [49], [49]]);
    expect(await store.getMany([])).toEqual([]);
  });

  it("a write applies all its ops at once; the last op on a key wins; deletes remove", async () => {
    const store = s();
    await store.write([{ type: "put", key: "x", value: bytes("old") }]);
    await store.write([
      { type: "put", key: "x", value: bytes("first") },
      { type: "put", key: "y", value: bytes("y") },
      { type: "del", key: "x" },
      { type: "put", key: "x", value: bytes("last") },
    ]);
    expect((await store.getMany(["x", "y"])).map(text)).toEqual(["last", "y"]);
    await store.write([{ type: "del", key: "x" }, { type: "del", key: "never-there" }]);
    expect(await store.get("x")).toBeUndefined();
  });
}

function registerConflicts(s: () => KvStore) {
  it("guards: an exact value or absence must hold, else KvConflictError and nothing of the write lands", async () => {
    const store = s();
    await store.write([{ type: "put", key: "g", value: bytes("v1") }], [{ key: "g", value: undefined }]);
    await expect(store.write([{ type: "put", key: "g", value: bytes("again") }, { type: "put", key: "side", value: bytes("1") }], [{ key: "g", value: undefined }])).rejects.toBeInstanceOf(KvConflictError);
    await expect(store.write([{ type: "put", key: "side", value: bytes("1") }], [{ key: "g", value: bytes("v0") }])).rejects.toBeInstanceOf(KvConflictError);
    // A guard on an empty value is not a guard on absence.
    await store.write([{ type: "put", key: "e", value: new Uint8Array() }]);
    await expect(store.write([{ type: "put", key: "side", value: bytes("1") }], [{ key: "e", value: undefined }])).rejects.toBeInstanceOf(KvConflictError);
    expect(await store.get("side")).toBeUndefined();
    await store.write([{ type: "put", key: "g", value: bytes("v2") }], [{ key: "g", value: bytes("v1") }, { key: "e", value: new Uint8Array() }, { key: "absent", value: undefined }]);
    expect(text(await store.get("g"))).toBe("v2");
  });

  it("50 concurrent guarded read-modify-writes with retryOnConflict lose no update", async () => {
    const store = s();
    await store.write([{ type: "put", key: "counter", value: bytes("0") }]);
    await Promise.all(
      Array.from({ length: 50 }, () =>
        retryOnConflict(async () => {
          const raw = await store.get("counter");
          await store.write([{ type: "put", key: "counter", value: bytes(String(Number(text(raw)) + 1)) }], [{ key: "counter", value: raw }]);
        }),
      ),
    );
    expect(text(await store.get("counter"))).toBe("50");
  });

  it("writes sent together: only the one whose guard fails is refused; the others land whole", async () => {
    const store = s();
    await store.write([{ type: "put", key: "taken", value: bytes("x") }]);
    const results = await Promise.allSettled([
      ...Array.from({ length: 20 }, (_, i) =>
        store.write([{ type: "put", key: `w${i}`, value: bytes(String(i)) }, { type: "put", key: `w${i}.b`, value: bytes("b") }], [{ key: `w${i}`, value: undefined }]),
      ),
      store.write([{ type: "put", key: "loser", value: bytes("l") }], [{ key: "taken", value: undefined }]),
    ]);
    expect(results.slice(0, 20).every((r) => r.status === "fulfilled")).toBe(true);
    expect(results[20]!.status === "rejected" && results[20].reason instanceof KvConflictError).toBe(true);
    const values = await store.getMany([...Array.from({ length: 20 }, (_, i) => `w${i}`), "w7.b", "loser"]);
    expect(values.slice(0, 20).map(text)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    expect(text(values[20])).toBe("b");
    expect(values[21]).toBeUndefined();
  });
}

function registerLimits(s: () => KvStore) {
  it("a write beyond the stated limits is refused with RESOURCE_EXHAUSTED, and nothing of it is written", async () => {
    const store = s();
    const { maxOps, maxGuards, maxBytes } = store.limits;
    const tooMany: KvOp[] = Array.from({ length: maxOps + 1 }, (_, i) => ({ type: "put", key: `op${i}`, value: bytes("v") }));
    const refusal = await store.write(tooMany).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(VeilError);
    expect((refusal as VeilError).kind).toBe("resource_exhausted");
    expect((refusal as VeilError).message).toContain(`at most ${maxOps}`);
    const guards = Array.from({ length: maxGuards + 1 }, (_, i) => ({ key: `guard${i}`, value: undefined }));
    await expect(store.write([{ type: "put", key: "op0", value: bytes("v") }], guards)).rejects.toMatchObject({ kind: "resource_exhausted" });
    if (maxBytes <= 16 * 1024 * 1024) {
      await expect(store.write([{ type: "put", key: "op0", value: new Uint8Array(maxBytes + 1) }])).rejects.toMatchObject({ kind: "resource_exhausted" });
    }
    // Exactly at the limit is fine.
    await store.write(tooMany.slice(0, Math.min(maxOps, 200)));
    expect(await store.get(`op${maxOps}`)).toBeUndefined();
  });
}

function registerScans(s: () => KvStore) {
  const expected = [...SCAN_KEYS].sort(byUtf8);
  const seed = (store: KvStore) => store.write(SCAN_KEYS.map((k) => ({ type: "put", key: k, value: bytes(`v:${k}`) })));

  it("scans: keys in UTF-8 byte order (\\0 and non-ASCII), gt/gte/lt bounds, limit, reverse", async () => {
    const store = s();
    await seed(store);
    await store.write([{ type: "put", key: "r", value: bytes("outside") }, { type: "put", key: "t", value: bytes("outside") }]);
    const keys = async (range: Parameters<KvStore["scan"]>[0]) => (await collect(store.scan(range))).map(([k]) => k);
    expect(await keys({ gte: "s\0", lt: "s\u0001" })).toEqual(expected.filter((k) => k.startsWith("s\0")));
    expect(await keys({ gte: "s", lt: "t" })).toEqual(expected);
    expect(await keys({ gt: "s\0a", lt: "s\0😀" })).toEqual(["s\0a\0b", "s\0b", "s\0z", "s\0é", "s\0日本", "s\0\uff21"]);
    // U+FF21 sorts before U+1F600 as UTF-8 (EF.. < F0..), though after it as UTF-16 (FF21 > D83D).
    expect(await keys({ gte: "s\0\uff21", lt: "s\0😀" })).toEqual(["s\0\uff21"]);
    expect(await keys({ gte: "s", lt: "t", limit: 3 })).toEqual(expected.slice(0, 3));
    expect(await keys({ gte: "s", lt: "t", reverse: true })).toEqual([...expected].reverse());
    expect(await keys({ gte: "s", lt: "t", reverse: true, limit: 2 })).toEqual([...expected].reverse().slice(0, 2));
    expect(await keys({ gte: "s", lt: "t", limit: 0 })).toEqual([]);
    const all = await collect(store.scan({}));
    expect(all.map(([k]) => k)).toEqual(["r", ...expected, "t"]);
    expect(all[1]![1]).toBe(`v:${expected[0]}`);
  });

  it("scans page through more keys than one round trip carries, forward and reverse, continuing after the last key", async () => {
    const store = s();
    const keys = Array.from({ length: 700 }, (_, i) => `p\0${String(i).padStart(4, "0")}${i % 7 === 0 ? "é" : ""}`);
    for (let i = 0; i < keys.length; i += 100) await store.write(keys.slice(i, i + 100).map((k) => ({ type: "put", key: k, value: bytes(k) })));
    const forward = await collect(store.scan({ gte: "p\0", lt: "p\u0001" }));
    expect(forward.map(([k]) => k)).toEqual([...keys].sort(byUtf8));
    expect(forward.every(([k, v]) => k === v)).toBe(true);
    const reverse = await collect(store.scan({ gte: "p\0", lt: "p\u0001", reverse: true }));
    expect(reverse.map(([k]) => k)).toEqual([...keys].sort(byUtf8).reverse());
    expect((await collect(store.scan({ gt: keys[299]!, lt: "p\u0001", limit: 300 }))).map(([k]) => k)).toEqual([...keys].sort(byUtf8).slice(300, 600));
  });
}

function registerCoordination(s: () => KvStore, h: () => StoreHarness) {
  it("watch reports puts and deletes under its prefix (only there) until unwatched", async () => {
    const store = s();
    const seen: KvChange[] = [];
    const unwatch = store.watch("w\0", { onChange: (c) => seen.push(c) });
    await sleep(100);
    await store.write([{ type: "put", key: "w\0a", value: bytes("1") }, { type: "put", key: "other", value: bytes("x") }]);
    await store.write([{ type: "del", key: "w\0a" }]);
    await until(() => seen.length >= 2);
    expect(seen.map((c) => [c.key, text(c.value)])).toEqual([
      ["w\0a", "1"],
      ["w\0a", undefined],
    ]);
    unwatch();
    await sleep(100);
    await store.write([{ type: "put", key: "w\0b", value: bytes("2") }]);
    await sleep(300);
    expect(seen).toHaveLength(2);
  });

  it("a watch sees writes made through another handle on the same store", async () => {
    if (h().peer === undefined) return;
    const store = s();
    const peer = await h().peer!();
    try {
      const seen: KvChange[] = [];
      const unwatch = store.watch("w\0", { onChange: (c) => seen.push(c) });
      await sleep(100);
      await peer.write([{ type: "put", key: "w\0peer", value: bytes("p") }]);
      await until(() => seen.length >= 1);
      expect(seen[0]!.key).toBe("w\0peer");
      unwatch();
    } finally {
      if (peer !== store) await peer.close();
    }
  });

  it("withLock: one holder at a time, across every handle on the store", async () => {
    const store = s();
    const peer = h().peer !== undefined ? await h().peer!() : store;
    try {
      let inside = 0;
      let most = 0;
      await store.write([{ type: "put", key: "n", value: bytes("0") }]);
      await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          (i % 2 === 0 ? store : peer).withLock("rotation", async () => {
            inside++;
            most = Math.max(most, inside);
            const n = Number(text(await store.get("n")));
            await sleep(10);
            await store.write([{ type: "put", key: "n", value: bytes(String(n + 1)) }]);
            inside--;
          }),
        ),
      );
      expect(most).toBe(1);
      expect(text(await store.get("n"))).toBe("8");
      // A throwing holder releases the lock.
      await expect(store.withLock("rotation", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
      expect(await peer.withLock("rotation", async () => "next")).toBe("next");
    } finally {
      if (peer !== store) await peer.close();
    }
  });

  it("putEphemeral: the key is there while held, gone after close", async () => {
    const store = s();
    const held = await store.putEphemeral("srv\0one", bytes("addr"));
    expect(text(await store.get("srv\0one"))).toBe("addr");
    await held.close();
    expect(await store.get("srv\0one")).toBeUndefined();
  });
}

function registerSnapshot(s: () => KvStore) {
  it("snapshot: count and entries are one instant, however many writes land while it is read", async () => {
    const store = s();
    expect(store.snapshot).toBeDefined();
    const keys = Array.from({ length: 300 }, (_, i) => `snap\0${String(i).padStart(3, "0")}`);
    for (let i = 0; i < keys.length; i += 100) await store.write(keys.slice(i, i + 100).map((k) => ({ type: "put", key: k, value: bytes("before") })));
    const snapshot = await store.snapshot!();
    try {
      const writes = (async () => {
        for (let i = 0; i < 300; i += 50) {
          await store.write([
            ...keys.slice(i, i + 50).map((k): KvOp => ({ type: "put", key: k, value: bytes("after") })),
            { type: "put", key: `snap\0new${i}`, value: bytes("new") },
            { type: "del", key: keys[299 - i / 50]! },
          ]);
        }
      })();
      const entries = await collect(snapshot.entries());
      await writes;
      expect(await snapshot.count()).toBe(300);
      expect(entries.map(([k]) => k)).toEqual(keys);
      expect(entries.every(([, v]) => v === "before")).toBe(true);
    } finally {
      await snapshot.close();
    }
    expect(text(await store.get(keys[0]!))).toBe("after");
  });
}
