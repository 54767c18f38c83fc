// Key rotation over real LevelDB: re-encryption to the new generation, online under load, resumable, and safe retirement.
import { VALUE_RANGE, apiKeyKey, valueKey } from "../server/crypto/sealed-paths.js";
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VeilError } from "../server/errors.js";
import { type Barrier, createBarrier, SEALED_FAMILIES, type SealedFamily } from "../server/crypto/barrier.js";
import { Keyring } from "../server/crypto/keyring.js";
import type { Principal } from "../server/domain/principal.js";
import { createRotation, type Rotation, type RotationDeps } from "../server/crypto/rotation.js";
import { blobGeneration } from "../server/crypto/blob.js";

import { createSettings } from "../server/domain/settings.js";
import { createVault, type Vault } from "../server/domain/vault.js";
import type { KvStore } from "../server/store/kv.js";
import { openLevelStore } from "../server/store/level-store.js";
import { tempDir } from "./support/temp-dir.js";

const admin = (tenant: string): Principal => ({ tenant, role: "admin", tokenId: "t", operator: false });
const TENANTS = ["acme", "globex"];
const salt = randomBytes(4).toString("hex");
const textOf = (tenant: string, name: string, version: number) => `canary-${salt}-${tenant}-${name}-v${version}`;

/** Generation of every stored secret value, by key. */
async function valueGenerations(store: KvStore): Promise<Map<string, number>> {
  const gens = new Map<string, number>();
  for await (const [key, value] of store.scan(VALUE_RANGE)) gens.set(key, blobGeneration(value));
  return gens;
}

/** Writes `secrets` names per tenant, each `versions` times, in batches; returns the names. */
async function seed(vault: Vault, secrets: number, versions: number): Promise<string[]> {
  const names = Array.from({ length: secrets }, (_, i) => `KEY_${String(i).padStart(4, "0")}`);
  for (const tenant of TENANTS) {
    for (let v = 1; v <= versions; v++) {
      const writes = names.map((name) => ({ name, value: { kind: "text" as const, text: textOf(tenant, name, v) }, description: "", metadata: {}, allowedAgents: [] }));
      await vault.setSecrets(admin(tenant), "", writes);
    }
  }
  return names;
}

/** Reads every version of every seeded secret and checks it is the value written. */
async function expectAllIntact(vault: Vault, names: string[], versions: number) {
  for (const tenant of TENANTS) {
    const reads = names.flatMap((name) => Array.from({ length: versions }, (_, i) => vault.getSecret(admin(tenant), "", name, i + 1).then((r) => [name, i + 1, r.value] as const)));
    for (const [name, version, value] of await Promise.all(reads)) {
      expect(value).toEqual({ kind: "text", text: textOf(tenant, name, version) });
    }
  }
}

async function kindOf(call: Promise<unknown>): Promise<VeilError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VeilError);
  return error as VeilError;
}

describe("key rotation", () => {
  let dir: ReturnType<typeof tempDir>;
  let store: KvStore;
  let keyring: Keyring;
  let barrier: Barrier;
  let vault: Vault;
  const master = randomBytes(32);
  const rotations: Rotation[] = [];

  const rotation = (extra: Partial<RotationDeps> = {}) => {
    const r = createRotation({ store, keyring, barrier, settleMs: 100, ...extra });
    rotations.push(r);
    return r;
  };

  beforeEach(async () => {
    dir = tempDir();
    store = await openLevelStore(dir.path);
    keyring = await Keyring.open(store, master);
    barrier = createBarrier(keyring);
    vault = createVault(store, barrier);
  });
  afterEach(async () => {
    for (const r of rotations.splice(0)) await r.stop();
    await store.close();
    dir.cleanup();
  });

  it("moves 2,000 values across tenants and versions to the new generation, all reading back identical", async () => {
    const names = await seed(vault, 100, 10);
    const before = await valueGenerations(store);
    expect(before.size).toBe(2000);
    expect(new Set(before.values())).toEqual(new Set([1]));

    const r = createRotation({ store, keyring, barrier });
    rotations.push(r);
    const started = await r.rotate();
    expect(started).toMatchObject({ activeGeneration: 2, generations: [1, 2], reencrypting: true, valuesRemaining: 2000 });
    expect(started.rotatedAt).toMatch(/^\d{4}-/);
    await r.idle();

    const after = await valueGenerations(store);
    expect([...after.keys()]).toEqual([...before.keys()]);
    expect(new Set(after.values())).toEqual(new Set([2]));
    expect(r.status()).toMatchObject({ reencrypting: false, valuesMoved: 2000, valuesRemaining: 0 });
    await expectAllIntact(vault, names, 10);
  });

  it("stays online under concurrent writes and reads: no read fails, no write is lost, all reads after retiring", async () => {
    const names = await seed(vault, 40, 8);
    const latest = new Map<string, number>(TENANTS.flatMap((t) => names.map((n) => [`${t}/${n}`, 8] as const)));
    const r = rotation({ ratePerSecond: 400 });
    let running = true;
    let reads = 0;
    let writes = 0;

    // Each writer owns a disjoint slice of secrets, so it knows the version its write must get.
    const writer = async (slice: string[], tenant: string) => {
      while (running) {
        for (const name of slice) {
          const version = latest.get(`${tenant}/${name}`)! + 1;
          const [record] = await vault.setSecrets(admin(tenant), "", [
            { name, value: { kind: "text", text: textOf(tenant, name, version) }, description: "", metadata: {}, allowedAgents: [], expectedVersion: version - 1 },
          ]);
          expect(record!.version).toBe(version);
          latest.set(`${tenant}/${name}`, version);
          writes++;
        }
      }
    };
    const reader = async () => {
      while (running) {
        const tenant = TENANTS[Math.floor(Math.random() * TENANTS.length)]!;
        const name = names[Math.floor(Math.random() * names.length)]!;
        const got = await vault.getSecret(admin(tenant), "", name);
        expect(got.value).toEqual({ kind: "text", text: textOf(tenant, name, got.version) });
        reads++;
      }
    };

    await r.rotate();
    const load = Promise.all([
      writer(names.slice(0, 4), "acme"),
      writer(names.slice(4, 8), "globex"),
      reader(),
      reader(),
      reader(),
    ]);
    await r.idle();
    running = false;
    await load;
    expect(reads).toBeGreaterThan(100);
    expect(writes).toBeGreaterThan(20);

    expect(await r.retireOld()).toEqual([1]);
    expect(keyring.generations).toEqual([2]);
    expect(new Set((await valueGenerations(store)).values())).toEqual(new Set([2]));
    for (const tenant of TENANTS) {
      for (const name of names) {
        const version = latest.get(`${tenant}/${name}`)!;
        const got = await vault.getSecret(admin(tenant), "", name);
        expect(got.version).toBe(version);
        for (let v = Math.max(1, version - 9); v <= version; v++) {
          expect((await vault.getSecret(admin(tenant), "", name, v)).value).toEqual({ kind: "text", text: textOf(tenant, name, v) });
        }
      }
    }
  });

  it("resumes after a restart: a stopped rotation finishes from a fresh store, keyring and rotation", async () => {
    const names = await seed(vault, 200, 5);
    const r = rotation({ ratePerSecond: 1000 });
    await r.rotate();
    while (r.status().valuesMoved < 256) await new Promise((done) => setTimeout(done, 20));
    await r.stop();
    const stopped = r.status();
    expect(stopped.reencrypting).toBe(false);
    expect(stopped.valuesMoved).toBeGreaterThan(0);
    expect(stopped.valuesRemaining).toBeGreaterThan(0);
    expect(new Set((await valueGenerations(store)).values())).toEqual(new Set([1, 2]));

    await store.close();
    store = await openLevelStore(dir.path);
    keyring = await Keyring.open(store, master);
    barrier = createBarrier(keyring);
    vault = createVault(store, barrier);
    const restarted = rotation();
    expect(restarted.status()).toMatchObject({ activeGeneration: 2, generations: [1, 2], reencrypting: false });
    await restarted.resume();
    expect(restarted.status().reencrypting).toBe(true);
    await restarted.idle();

    expect(restarted.status().valuesMoved).toBe(stopped.valuesRemaining);
    expect(new Set((await valueGenerations(store)).values())).toEqual(new Set([2]));
    await expectAllIntact(vault, names, 5);
  });

  it("retireOld refuses while any blob is still under an old generation, and succeeds once it is moved", async () => {
    const names = await seed(vault, 10, 2);
    const key = valueKey("acme", "", names[3]!, 2);
    const oldBlob = (await store.get(key))!;
    const r = rotation();
    await r.rotate();
    expect((await kindOf(r.retireOld())).kind).toBe("failed_precondition");
    await r.idle();

    // A generation-1 blob reappears (e.g. a late write sealed before the switch).
    await store.write([{ type: "put", key, value: oldBlob }]);
    const refused = await kindOf(r.retireOld());
    expect(refused.kind).toBe("failed_precondition");
    expect(refused.message).toMatch(/1 stored values still hold blobs under generations older than 2/);
    expect(keyring.generations).toEqual([1, 2]);

    await r.resume();
    await r.idle();
    expect(await r.retireOld()).toEqual([1]);
    expect(keyring.generations).toEqual([2]);
    expect(await r.retireOld()).toEqual([]);
    await expectAllIntact(vault, names, 2);
  });

  it("resume refuses to start when a stored blob needs a retired generation, naming it", async () => {
    const names = await seed(vault, 5, 1);
    const key = valueKey("globex", "", names[0]!, 1);
    const oldBlob = (await store.get(key))!;
    const r = rotation();
    await r.rotate();
    await r.idle();
    expect(await r.retireOld()).toEqual([1]);
    await store.write([{ type: "put", key, value: oldBlob }]);

    const restarted = rotation();
    const error = await kindOf(restarted.resume());
    expect(error.kind).toBe("failed_precondition");
    expect(error.message).toMatch(/not in the keyring: generation 1 \(1 blob\).*holds generations 2/);
    expect(error.message).not.toContain(salt);
    expect(restarted.status().reencrypting).toBe(false);
  });

  it("never resurrects a secret deleted, or clobbers one recreated, while its batch is in flight", async () => {
    const names = await seed(vault, 20, 3);
    const [gone, recreated] = [names[0]!, names[1]!];
    let raced = false;
    // The first re-encryption write lets the vault delete one secret and recreate another before it commits.
    const racing: KvStore = {
      limits: store.limits,
      get: (k) => store.get(k),
      getMany: (ks) => store.getMany(ks),
      scan: (range) => store.scan(range),
      watch: (prefix, handlers) => store.watch(prefix, handlers),
      withLock: (name, fn) => store.withLock(name, fn),
      putEphemeral: (key, value) => store.putEphemeral(key, value),
      close: () => store.close(),
      async write(ops, guards) {
        if (!raced) {
          raced = true;
          await vault.deleteSecret(admin("acme"), "", gone);
          await vault.deleteSecret(admin("acme"), "", recreated);
          await vault.setSecrets(admin("acme"), "", [{ name: recreated, value: { kind: "text", text: "fresh" }, description: "", metadata: {}, allowedAgents: [] }]);
        }
        return store.write(ops, guards);
      },
    };
    const r = rotation({ store: racing });
    await r.rotate();
    await r.idle();

    expect(raced).toBe(true);
    const gens = await valueGenerations(store);
    expect([...gens.keys()].filter((k) => k.includes(`\0acme\0\0${gone}\0`))).toEqual([]);
    expect(new Set(gens.values())).toEqual(new Set([2]));
    expect((await kindOf(vault.getSecret(admin("acme"), "", gone))).kind).toBe("not_found");
    const fresh = await vault.getSecret(admin("acme"), "", recreated);
    expect([fresh.version, fresh.value]).toEqual([1, { kind: "text", text: "fresh" }]);
    expect((await kindOf(vault.getSecret(admin("acme"), "", recreated, 2))).kind).toBe("not_found");
    expect((await vault.getSecret(admin("globex"), "", gone, 3)).value).toEqual({ kind: "text", text: textOf("globex", gone, 3) });
  });

  it("catches, with another pass, an old-generation write that commits behind the scan", async () => {
    const names = await seed(vault, 100, 1);
    const late = valueKey("acme", "", names[0]!, 1);
    const lateBlob = (await store.get(late))!;
    let batches = 0;
    // While the second batch is written, a write sealed before the switch lands on a key the first batch already moved.
    const racing: KvStore = {
      limits: store.limits,
      get: (k) => store.get(k),
      getMany: (ks) => store.getMany(ks),
      scan: (range) => store.scan(range),
      watch: (prefix, handlers) => store.watch(prefix, handlers),
      withLock: (name, fn) => store.withLock(name, fn),
      putEphemeral: (key, value) => store.putEphemeral(key, value),
      close: () => store.close(),
      async write(ops, guards) {
        if (++batches === 2) await store.write([{ type: "put", key: late, value: lateBlob }]);
        return store.write(ops, guards);
      },
    };
    const r = rotation({ store: racing });
    await r.rotate();
    await r.idle();
    expect(batches).toBeGreaterThan(2);
    expect(blobGeneration((await store.get(late))!)).toBe(2);
    expect(new Set((await valueGenerations(store)).values())).toEqual(new Set([2]));
    await expectAllIntact(vault, names, 1);
  });

  it("walks every sealed family of the barrier: secret values, settings API keys, and one a caller registers", async () => {
    // A made-up family: every value under tst/ is sealed for acme, bound to its own path.
    const tst: SealedFamily = { name: "test values", prefix: "tst\0", bind: (path) => ({ tenant: "acme", aad: new TextEncoder().encode(path) }) };
    barrier = createBarrier(keyring, [...SEALED_FAMILIES, tst]);
    vault = createVault(store, barrier);
    const settings = createSettings(store, barrier);
    await store.write([barrier.sealOp("tst\0one", Buffer.from("alpha")), barrier.sealOp("tst\0two", Buffer.from("beta"))]);
    await settings.update("acme", { apiKey: `sk-${salt}`, options: {} });
    const names = await seed(vault, 3, 1);

    const r = rotation();
    expect((await r.rotate()).valuesRemaining).toBe(9);
    await r.idle();
    expect(r.status().valuesMoved).toBe(9);
    for (const key of ["tst\0one", "tst\0two", apiKeyKey("acme")]) expect(blobGeneration((await store.get(key))!)).toBe(2);
    expect(Buffer.from(await barrier.open("tst\0two", (await store.get("tst\0two"))!)).toString()).toBe("beta");
    expect(await r.retireOld()).toEqual([1]);
    expect((await settings.read("acme")).llm.apiKey).toBe(`sk-${salt}`);
    await expectAllIntact(vault, names, 1);
  });
});
