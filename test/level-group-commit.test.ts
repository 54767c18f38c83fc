// The LevelDB store's group commit lets a batch fill while writes keep arriving, and syncs a lone write on its own.
import { afterEach, describe, expect, it } from "vitest";
import { openLevelStore } from "../server/store/level-store.js";
import type { KvStore } from "../server/store/kv.js";
import { tempDir } from "./support/temp-dir.js";

const enc = new TextEncoder();
let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function level(): Promise<{ store: KvStore; batches: number[] }> {
  const dir = tempDir();
  const batches: number[] = [];
  const store = await openLevelStore(dir.path, { onBatch: (writes) => batches.push(writes) });
  cleanup.push(async () => {
    await store.close();
    dir.cleanup();
  });
  return { store, batches };
}

describe("LevelDB group commit", () => {
  it("writes that arrive in the same turns as the first (calls finishing together) share its synced batch", async () => {
    const { store, batches } = await level();
    const writes = await new Promise<Promise<void>[]>((resolve) => {
      const out: Promise<void>[] = [];
      // Twenty callbacks of one event-loop phase, like twenty calls whose reads answered together.
      for (let i = 0; i < 20; i++) {
        setImmediate(() => {
          out.push(store.write([{ type: "put", key: `aud\0t\0${i}`, value: enc.encode(String(i)) }]));
          if (out.length === 20) resolve(out);
        });
      }
    });
    await Promise.all(writes);
    expect(batches).toEqual([20]);
    for (let i = 0; i < 20; i++) expect(new TextDecoder().decode(await store.get(`aud\0t\0${i}`))).toBe(String(i));
  });

  it("writes one after another are each synced on their own, none held back for company that never comes", async () => {
    const { store, batches } = await level();
    for (let i = 0; i < 20; i++) await store.write([{ type: "put", key: `k${i}`, value: enc.encode("v") }]);
    expect(batches).toEqual(Array(20).fill(1));
  });
});
