// The keyring: generations wrapped by the master key, per-tenant derivation, wrong-key refusal.
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VeilError } from "../server/errors.js";
import { Keyring } from "../server/crypto/keyring.js";
import type { KvStore } from "../server/store/kv.js";
import { openLevelStore } from "../server/store/level-store.js";
import { tempDir } from "./support/temp-dir.js";

const aad = new TextEncoder().encode("binding");
const secret = new TextEncoder().encode("canary-keyring-value");

describe("keyring", () => {
  let dir: ReturnType<typeof tempDir>;
  let store: KvStore;
  const master = randomBytes(32);

  beforeEach(async () => {
    dir = tempDir();
    store = await openLevelStore(dir.path);
  });
  afterEach(async () => {
    await store.close();
    dir.cleanup();
  });

  it("creates generation 1 and reopens it with the same master key", async () => {
    const first = await Keyring.open(store, master);
    expect(first.activeGeneration).toBe(1);
    const blob = first.seal("acme", secret, aad);
    const again = await Keyring.open(store, master);
    expect(Buffer.from(again.open("acme", blob, aad)).toString()).toBe("canary-keyring-value");
  });

  it("refuses a wrong master key with a clear message", async () => {
    await Keyring.open(store, master);
    const error = await Keyring.open(store, randomBytes(32)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VeilError);
    expect((error as VeilError).kind).toBe("failed_precondition");
    expect((error as Error).message).toMatch(/master key does not match this store/);
  });

  it("derives a different key per tenant: one tenant's blob does not open as another's", async () => {
    const ring = await Keyring.open(store, master);
    expect(Buffer.from(ring.tenantKey("a", 1))).not.toEqual(Buffer.from(ring.tenantKey("b", 1)));
    const blob = ring.seal("a", secret, aad);
    expect(() => ring.open("b", blob, aad)).toThrow(VeilError);
  });

  it("keeps old generations readable after adding one; new seals use the new one", async () => {
    const ring = await Keyring.open(store, master);
    const old = ring.seal("acme", secret, aad);
    expect(await ring.addGeneration()).toBe(2);
    const fresh = ring.seal("acme", secret, aad);
    expect(Buffer.from(fresh).readUInt32BE(1)).toBe(2);
    const reopened = await Keyring.open(store, master);
    expect(Buffer.from(reopened.open("acme", old, aad)).toString()).toBe("canary-keyring-value");
    expect(Buffer.from(reopened.open("acme", fresh, aad)).toString()).toBe("canary-keyring-value");
  });

  it("rekey re-wraps the keyring: the new master key opens old data, the old one is refused", async () => {
    const ring = await Keyring.open(store, master);
    const blob = ring.seal("acme", secret, aad);
    const next = randomBytes(32);
    await ring.rekey(next);
    await expect(Keyring.open(store, master)).rejects.toThrow(/does not match/);
    const reopened = await Keyring.open(store, next);
    expect(Buffer.from(reopened.open("acme", blob, aad)).toString()).toBe("canary-keyring-value");
  });
});
