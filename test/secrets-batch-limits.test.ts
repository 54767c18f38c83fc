// SetSecrets within the store's limits: a batch one transaction cannot carry is refused whole (RESOURCE_EXHAUSTED), nothing written.
import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAudit } from "../server/domain/audit.js";
import { VeilError } from "../server/errors.js";
import { createBarrier } from "../server/crypto/barrier.js";
import { Keyring } from "../server/crypto/keyring.js";
import type { Principal } from "../server/domain/principal.js";
import { createVault } from "../server/domain/vault.js";
import { etcdLimits } from "../server/store/etcd-store.js";
import { openMemoryStore } from "../server/store/memory-store.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { type EtcdCluster, etcdMissing, etcdSkipNote, startEtcd } from "./support/etcd.js";
import { expectCode } from "./support/expect-code.js";

const CANARY = `canary-BATCH-${randomBytes(4).toString("hex")}`;
const admin: Principal = { tenant: "acme", role: "admin", tokenId: "t", operator: false };
const writesOf = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({ name: `${tag}_${String(i).padStart(3, "0")}`, value: { kind: "text" as const, text: `${CANARY}-${i}` }, description: "", metadata: {}, allowedAgents: [] }));

describe("SetSecrets on a store with etcd's default limits (memory)", () => {
  it("60 secrets (with their audit events) exceed one transaction: refused whole, naming secrets, the count and the limit; 20 work", async () => {
    const store = openMemoryStore({ limits: etcdLimits(128, 1.5 * 1024 * 1024, "veil/") });
    const vault = createVault(store, createBarrier(await Keyring.open(store, randomBytes(32))));
    const audit = createAudit(store);
    const hook = (records: { name: string; version: number }[]) =>
      records.flatMap((r) => audit.ops({ tenant: "acme", tokenId: "t", agent: "", action: "SetSecrets", outcome: "ok", secretName: r.name, version: r.version }));
    const before = await countEntries(store);
    const refusal = await vault.setSecrets(admin, "", writesOf(60, "BIG"), hook).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(VeilError);
    expect((refusal as VeilError).kind).toBe("resource_exhausted");
    expect((refusal as VeilError).message).toMatch(/^secrets \(60 in one call\): needs 180 operations, the store commits at most 128 at once/);
    expect((refusal as VeilError).message).not.toContain(CANARY);
    expect(await countEntries(store)).toBe(before);
    const written = await vault.setSecrets(admin, "", writesOf(20, "SMALL"), hook);
    expect(written).toHaveLength(20);
    expect((await vault.getSecret(admin, "", "SMALL_019")).value).toEqual({ kind: "text", text: `${CANARY}-19` });
  });
});

async function countEntries(store: { scan: (r: object) => AsyncIterable<unknown> }) {
  let n = 0;
  for await (const _ of store.scan({})) n++;
  return n;
}

describe.skipIf(etcdMissing !== undefined)(`SetSecrets over the API with --store etcd${etcdSkipNote}`, () => {
  let cluster: EtcdCluster;
  let t: TestApp;
  beforeAll(async () => {
    cluster = await startEtcd();
    t = await startTestApp({ extraFlags: ["--store", "etcd", "--etcd-endpoints", cluster.endpoints.join(","), "--etcd-prefix", `batch${randomBytes(4).toString("hex")}/`] });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await cluster?.stop();
  });

  it("a 60-secret SetSecrets is RESOURCE_EXHAUSTED and leaves the store unchanged; a 20-secret one works", async () => {
    const secrets = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ name: `${tag}_${i}`, text: `${CANARY}-${i}` }));
    const error = await expectCode(t.admin.secrets.setSecrets({ secrets: secrets(60, "BIG") }), Code.ResourceExhausted, /^secrets \(60 in one call\): needs \d+ operations, the store commits at most 128 at once/);
    expect(error.message).not.toContain(CANARY);
    expect((await t.admin.secrets.listSecrets({})).secrets).toHaveLength(0);
    const res = await t.admin.secrets.setSecrets({ secrets: secrets(20, "SMALL") });
    expect(res.secrets).toHaveLength(20);
    expect((await t.admin.secrets.getSecret({ name: "SMALL_7" })).text).toBe(`${CANARY}-7`);
  });
});
