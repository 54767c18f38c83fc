// Key rotation and the keyring on a store shared by several servers (the memory store stands in for etcd), and batching within store limits.
import { VALUE_RANGE, valueKey } from "../server/crypto/sealed-paths.js";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createBarrier } from "../server/crypto/barrier.js";
import { blobGeneration } from "../server/crypto/blob.js";
import { Keyring } from "../server/crypto/keyring.js";
import { createSealer } from "../server/crypto/sealed-tokens.js";
import { createRotation, ROTATION_LOCK } from "../server/crypto/rotation.js";
import { VeilError } from "../server/errors.js";
import type { Principal } from "../server/domain/principal.js";

import { createSettings } from "../server/domain/settings.js";
import { createVault } from "../server/domain/vault.js";
import { type KvLimits, type KvStore, writeSize } from "../server/store/kv.js";
import { openMemoryStore } from "../server/store/memory-store.js";

const admin: Principal = { tenant: "acme", role: "admin", tokenId: "t", operator: false };
const salt = randomBytes(4).toString("hex");
const text = (name: string, size = 0) => `canary-${salt}-${name}-${"x".repeat(size)}`;

/** One "server" over the shared store: its own keyring, barrier, vault, settings and rotation. */
async function server(store: KvStore, master: Uint8Array, logs: string[] = []) {
  const keyring = await Keyring.open(store, master, { log: (level, msg) => logs.push(`${level} ${msg}`) });
  const barrier = createBarrier(keyring);
  return {
    keyring,
    barrier,
    vault: createVault(store, barrier),
    settings: createSettings(store, barrier),
    rotation: createRotation({ store, keyring, barrier, settleMs: 50 }),
    logs,
  };
}

async function put(s: Awaited<ReturnType<typeof server>>, names: string[], size = 0) {
  await s.vault.setSecrets(admin, "", names.map((name) => ({ name, value: { kind: "text" as const, text: text(name, size) }, description: "", metadata: {}, allowedAgents: [] })));
}

async function generations(store: KvStore): Promise<Set<number>> {
  const gens = new Set<number>();
  for await (const [, value] of store.scan(VALUE_RANGE)) gens.add(blobGeneration(value));
  return gens;
}

describe("keyring and rotation across servers sharing one store", () => {
  it("a rotation on one server: the other seals under the new generation at once, and both open everything", async () => {
    const store = openMemoryStore();
    const master = randomBytes(32);
    const [a, b] = [await server(store, master), await server(store, master)];
    await put(b, ["ONE", "TWO", "THREE"]);
    await b.settings.update("acme", { apiKey: `sk-${salt}`, options: {} });

    await a.rotation.rotate();
    expect(b.keyring.activeGeneration).toBe(2);
    await put(b, ["FOUR"]);
    expect(blobGeneration((await store.get(valueKey("acme", "", "FOUR", 1)))!)).toBe(2);
    await a.rotation.idle();
    expect(await generations(store)).toEqual(new Set([2]));

    for (const s of [a, b]) {
      for (const name of ["ONE", "TWO", "THREE", "FOUR"]) expect((await s.vault.getSecret(admin, "", name)).value).toEqual({ kind: "text", text: text(name) });
      expect((await s.settings.read("acme")).llm.apiKey).toBe(`sk-${salt}`);
    }
    expect(await a.rotation.retireOld()).toEqual([1]);
    expect(b.keyring.generations).toEqual([2]);
  });

  it("a server that missed the change reloads once when it meets a generation it lacks; one that does not exist stays DATA_LOSS", async () => {
    const store = openMemoryStore();
    const master = randomBytes(32);
    const a = await server(store, master);
    const deaf = await Keyring.open(store, master, { watch: false });
    const deafVault = createVault(store, createBarrier(deaf));
    await a.rotation.rotate();
    await put(a, ["LATE"]);
    expect(deaf.activeGeneration).toBe(1);
    expect((await deafVault.getSecret(admin, "", "LATE")).value).toEqual({ kind: "text", text: text("LATE") });
    expect(deaf.activeGeneration).toBe(2);
    // A sealed token from the server that rotated opens here too, after one reload.
    const deafer = await Keyring.open(store, master, { watch: false });
    await a.rotation.rotate();
    const token = createSealer(a.keyring).seal("acme", "inject", `tok-${salt}`);
    expect(await createSealer(deafer).open("acme", "inject", token, "sealed_secrets[K]")).toBe(`tok-${salt}`);

    const blob = Buffer.from((await store.get(valueKey("acme", "", "LATE", 1)))!);
    blob.writeUInt32BE(99, 1);
    await store.write([{ type: "put", key: valueKey("acme", "", "LATE", 1), value: blob }]);
    const error = await deafVault.getSecret(admin, "", "LATE").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VeilError);
    expect((error as VeilError).kind).toBe("data_loss");
    expect((error as VeilError).message).toContain("key generation 99 is not in the keyring");
  });

  it("another server's rekey is logged and refused, not a crash: the keys held keep working", async () => {
    const store = openMemoryStore();
    const master = randomBytes(32);
    const logs: string[] = [];
    const [a, b] = [await server(store, master), await server(store, master, logs)];
    await put(a, ["KEPT"]);
    await a.keyring.rekey(randomBytes(32));
    expect(logs.join("\n")).toMatch(/^error keyring: the stored keyring is wrapped under another master key.*restart it with the new master key/m);
    expect((await b.vault.getSecret(admin, "", "KEPT")).value).toEqual({ kind: "text", text: text("KEPT") });
    await put(b, ["AFTER"]);
    expect((await a.vault.getSecret(admin, "", "AFTER")).value).toEqual({ kind: "text", text: text("AFTER") });
  });

  it("two servers rotating at once take turns under the store lock: distinct generations, one pass at a time", async () => {
    const shared = openMemoryStore();
    let holders = 0;
    let most = 0;
    const names: string[] = [];
    // The shared store, with its lock instrumented: how many hold "key-rotation" at once.
    const store: KvStore = Object.assign(Object.create(shared) as KvStore, {
      limits: shared.limits,
      async withLock<T>(name: string, fn: () => Promise<T>) {
        return shared.withLock(name, async () => {
          names.push(name);
          most = Math.max(most, ++holders);
          try {
            return await fn();
          } finally {
            holders--;
          }
        });
      },
    });
    const master = randomBytes(32);
    const [a, b] = [await server(store, master), await server(store, master)];
    await put(a, Array.from({ length: 300 }, (_, i) => `K${i}`));

    // Each adds its own generation (2 and 3, never the same id twice) and re-encrypts to the newest.
    await Promise.all([a.rotation.rotate(), b.rotation.rotate()]);
    await Promise.all([a.rotation.idle(), b.rotation.idle()]);
    expect(a.keyring.generations).toEqual([1, 2, 3]);
    expect(b.keyring.activeGeneration).toBe(3);
    expect(await generations(shared)).toEqual(new Set([3]));
    expect(names.every((n) => n === ROTATION_LOCK)).toBe(true);
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(most).toBe(1);
  });
});

describe("rotation within the store's write limits", () => {
  const limits: KvLimits = { maxOps: 8, maxGuards: 8, maxBytes: 8192 };

  it("moves every value in writes whose ops, guards and bytes all fit", async () => {
    const shared = openMemoryStore({ limits });
    const sizes: ReturnType<typeof writeSize>[] = [];
    const store: KvStore = Object.assign(Object.create(shared) as KvStore, {
      limits,
      write: (ops: Parameters<KvStore["write"]>[0], guards: Parameters<KvStore["write"]>[1]) => {
        sizes.push(writeSize(ops, guards));
        return shared.write(ops, guards);
      },
    });
    const s = await server(store, randomBytes(32));
    const names = Array.from({ length: 40 }, (_, i) => `S${i}`);
    for (let i = 0; i < names.length; i += 4) await put(s, names.slice(i, i + 4), i < 20 ? 0 : 1000);
    sizes.length = 0;
    await s.rotation.rotate();
    await s.rotation.idle();
    expect(await generations(shared)).toEqual(new Set([2]));
    const batches = sizes.filter((w) => w.guards > 1 || w.ops > 1);
    expect(batches.length).toBeGreaterThan(40 / 8);
    for (const w of sizes) expect(w.ops <= 8 && w.guards <= 8 && w.bytes <= 8192).toBe(true);
    for (const name of names) expect((await s.vault.getSecret(admin, "", name)).value).toEqual({ kind: "text", text: text(name, names.indexOf(name) < 20 ? 0 : 1000) });
  });

  it("refuses, by name and with RESOURCE_EXHAUSTED, a value too big to move even alone", async () => {
    const store = openMemoryStore({ limits });
    const s = await server(store, randomBytes(32));
    await put(s, ["BIG"], 4500);
    await s.rotation.rotate();
    const error = await s.rotation.idle().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VeilError);
    expect((error as VeilError).kind).toBe("resource_exhausted");
    expect((error as VeilError).message).toMatch(/secret values at val\/acme\/\/BIG\/000000000001 needs \d+ bytes to re-encrypt in one write, the store commits at most 8192/);
    expect((error as VeilError).message).not.toContain(salt);
  });
});
