// The LevelDB store's read cache never answers with a value a write has replaced, however reads and writes interleave.
import { randomBytes, randomInt } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { openLevelStore } from "../server/store/level-store.js";
import type { KvStore } from "../server/store/kv.js";
import { MISS, ReadCache } from "../server/store/read-cache.js";
import { tempDir } from "./support/temp-dir.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (v: Uint8Array | undefined) => (v === undefined ? undefined : dec.decode(v));

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function level(options: Parameters<typeof openLevelStore>[1] = {}): Promise<{ store: KvStore; dir: string }> {
  const dir = tempDir();
  const store = await openLevelStore(dir.path, options);
  cleanup.push(async () => {
    await store.close();
    dir.cleanup();
  });
  return { store, dir: dir.path };
}

describe("LevelDB read cache", () => {
  it("a read racing a write of the same key is not kept: the next read sees the write", async () => {
    const { store } = await level();
    for (let i = 0; i < 300; i++) {
      const key = `k${i % 7}`;
      await store.get(key); // cached (old value or absent)
      await store.write([{ type: "put", key: "other", value: enc.encode(String(i)) }]); // unrelated write: nothing to drop
      // Sent to LevelDB in the same turn as the write: its answer may predate the write.
      const racing = store.getMany([key, `fresh${i}`]);
      const written = store.write([{ type: "put", key, value: enc.encode(`v${i}`) }]);
      await Promise.all([racing, written]);
      expect(text(await store.get(key))).toBe(`v${i}`);
      expect(text((await store.getMany([key, "other"]))[0])).toBe(`v${i}`);
    }
  });

  it("under concurrent random reads, writes and deletes, every read after a write resolved sees it, and the end state matches a reopen", async () => {
    const { store, dir } = await level({ readCache: { maxEntries: 8, maxBytes: 4096, maxValueBytes: 64 } });
    const keys = Array.from({ length: 12 }, (_, i) => `key${i}`);
    const settled = new Map<string, string | undefined>();
    const failures: string[] = [];
    for (let round = 0; round < 40; round++) {
      const pending: Promise<void>[] = [];
      for (let n = 0; n < 25; n++) {
        const key = keys[randomInt(keys.length)]!;
        const choice = randomInt(3);
        if (choice === 0) {
          // Some values exceed maxValueBytes, which are never kept.
          const value = `${round}-${n}-${randomBytes(randomInt(2) === 0 ? 4 : 80).toString("hex")}`;
          pending.push(store.write([{ type: "put", key, value: enc.encode(value) }]).then(() => void settled.set(key, value)));
        } else if (choice === 1) {
          pending.push(store.write([{ type: "del", key }]).then(() => void settled.set(key, undefined)));
        } else {
          // Only keys with no write in this round have one right answer.
          pending.push(store.get(key).then(() => {}));
        }
      }
      await Promise.all(pending);
      // Quiet now: every key must read as the last write this round left it.
      const values = await store.getMany(keys);
      for (const [i, key] of keys.entries()) if (settled.has(key) && text(values[i]) !== settled.get(key)) failures.push(`${key}: ${text(values[i])} != ${settled.get(key)}`);
      for (const key of keys) if (settled.has(key) && text(await store.get(key)) !== settled.get(key)) failures.push(`${key} (get)`);
    }
    expect(failures).toEqual([]);
    const final = await store.getMany(keys);
    await store.close();
    const reopened = await openLevelStore(dir);
    cleanup.push(() => reopened.close());
    expect((await reopened.getMany(keys)).map(text)).toEqual(final.map(text));
  });

  it("reads answered from the cache still yield to timers and I/O: a loop of them does not starve the event loop", async () => {
    const { store } = await level();
    await store.write([{ type: "put", key: "hot", value: enc.encode("v") }]);
    await store.get("hot");
    let fired = false;
    setTimeout(() => {
      fired = true;
    }, 1);
    const started = Date.now();
    while (!fired && Date.now() - started < 2000) await store.get("hot");
    expect(fired).toBe(true);
  });

  it("a guarded write checks the guard against the store, not a replaced cached value", async () => {
    const { store } = await level();
    await store.write([{ type: "put", key: "g", value: enc.encode("1") }]);
    const first = await store.get("g");
    await store.write([{ type: "put", key: "g", value: enc.encode("2") }]);
    await expect(store.write([{ type: "put", key: "g", value: enc.encode("3") }], [{ key: "g", value: first }])).rejects.toThrow(/guarded key changed/);
    expect(text(await store.get("g"))).toBe("2");
  });
});

describe("ReadCache bounds", () => {
  it("keeps at most maxEntries and maxBytes, oldest out first, and never a value over maxValueBytes", () => {
    const cache = new ReadCache({ maxEntries: 3, maxBytes: 40, maxValueBytes: 16 });
    const fill = (keys: string[], values: (Uint8Array | undefined)[]) => cache.answered(cache.begin(keys), values);
    fill(["a", "b", "c", "d"], [enc.encode("1"), enc.encode("2"), undefined, enc.encode("4")]);
    expect(cache.lookup("a")).toBe(MISS);
    expect(text(cache.lookup("b") as Uint8Array)).toBe("2");
    expect(cache.lookup("c")).toBeUndefined();
    fill(["big"], [new Uint8Array(17)]);
    expect(cache.lookup("big")).toBe(MISS);
    fill(["x", "y", "z"], [new Uint8Array(16), new Uint8Array(16), new Uint8Array(16)]);
    // 3 × (16 + 1) bytes exceed 40: the oldest of them went.
    expect(cache.lookup("x")).toBe(MISS);
    expect(cache.lookup("z")).not.toBe(MISS);
  });

  it("an answer that a write overtook is not kept; other keys of the same read are", () => {
    const cache = new ReadCache({ maxEntries: 10, maxBytes: 1000, maxValueBytes: 100 });
    const read = cache.begin(["a", "b"]);
    cache.written(["a"]);
    cache.answered(read, [enc.encode("old"), enc.encode("b")]);
    expect(cache.lookup("a")).toBe(MISS);
    expect(text(cache.lookup("b") as Uint8Array)).toBe("b");
    cache.written(["b"]);
    expect(cache.lookup("b")).toBe(MISS);
  });
});
