// SecretService through the real app and LevelDB, in memory: CRUD, versions, CAS, batches, scopes, access.
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { toBinary } from "@bufbuild/protobuf";
import { ListSecretsResponseSchema, Role, ValueKind } from "../client/index.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { expectCode } from "./support/expect-code.js";

describe("SecretService", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  const set = (name: string, text: string, extra: Record<string, unknown> = {}, session = "") =>
    t.admin.secrets.setSecrets({ session, secrets: [{ name, text, ...extra }] });

  it("stores text and fields values and reads them back with metadata", async () => {
    const res = await t.admin.secrets.setSecrets({
      secrets: [
        { name: "OPENAI_KEY", text: "sk-canary-1", description: "LLM key", metadata: { owner: "ml" } },
        { name: "DB", fields: { user: "app", password: "canary-pw" } },
      ],
    });
    expect(res.secrets.map((s) => [s.name, s.version])).toEqual([["OPENAI_KEY", 1n], ["DB", 1n]]);
    const text = await t.admin.secrets.getSecret({ name: "OPENAI_KEY" });
    expect(text.text).toBe("sk-canary-1");
    expect(text.meta?.description).toBe("LLM key");
    expect(text.meta?.metadata).toEqual({ owner: "ml" });
    expect(text.meta?.kind).toBe(ValueKind.TEXT);
    const fields = await t.admin.secrets.getSecret({ name: "DB" });
    expect(fields.text).toBeUndefined();
    expect(fields.fields).toEqual({ user: "app", password: "canary-pw" });
    expect(fields.meta?.fieldNames).toEqual(["password", "user"]);
  });

  it("counts versions, keeps created_at, and keeps the last 10 readable", async () => {
    for (let i = 1; i <= 12; i++) await set("ROTATING", `value-${i}`);
    const latest = await t.admin.secrets.getSecret({ name: "ROTATING" });
    expect(latest.meta?.version).toBe(12n);
    expect(latest.text).toBe("value-12");
    expect(latest.meta!.createdAt!.seconds <= latest.meta!.updatedAt!.seconds).toBe(true);
    expect((await t.admin.secrets.getSecret({ name: "ROTATING", version: 3n })).text).toBe("value-3");
    await expectCode(t.admin.secrets.getSecret({ name: "ROTATING", version: 2n }), Code.NotFound, /version: .*no version 2/);
    await expectCode(t.admin.secrets.getSecret({ name: "ROTATING", version: 13n }), Code.NotFound, /no version 13/);
  });

  it("check-and-set: expected_version 0 creates only, a mismatch is ABORTED and writes nothing", async () => {
    await set("CAS", "one", { expectedVersion: 0n });
    await expectCode(set("CAS", "again", { expectedVersion: 0n }), Code.Aborted, /expected_version: expected 0, the stored version is 1/);
    await set("CAS", "two", { expectedVersion: 1n });
    await expectCode(set("CAS", "stale", { expectedVersion: 1n }), Code.Aborted);
    expect((await t.admin.secrets.getSecret({ name: "CAS" })).text).toBe("two");
  });

  it("a batch is all or nothing: one bad entry rejects the whole batch", async () => {
    await set("KEEP", "original");
    await expectCode(
      t.admin.secrets.setSecrets({ secrets: [{ name: "KEEP", text: "changed" }, { name: "NEW_ONE", text: "x" }, { name: "9bad", text: "y" }] }),
      Code.InvalidArgument,
      /secrets\[2\]\.name: must match/,
    );
    // A map key is named as the caller wrote it, in brackets; field names are snake_case.
    await expectCode(
      t.admin.secrets.setSecrets({ secrets: [{ name: "KEEP", text: "changed", metadata: { ownerTeam: "x".repeat(600) }, egressBody: true }] }),
      Code.InvalidArgument,
      /^secrets\[0\]\.metadata\[ownerTeam\]: values must be at most 512 chars; secrets\[0\]\.egress_body: needs egress_hosts/,
    );
    await expectCode(
      t.admin.secrets.setSecrets({ secrets: [{ name: "KEEP", text: "changed" }, { name: "OTHER", text: "x", expectedVersion: 5n }] }),
      Code.Aborted,
      /secrets\[1\]\.expected_version/,
    );
    expect((await t.admin.secrets.getSecret({ name: "KEEP" })).text).toBe("original");
    expect((await t.admin.secrets.getSecret({ name: "KEEP" })).meta?.version).toBe(1n);
    await expectCode(t.admin.secrets.getSecret({ name: "NEW_ONE" }), Code.NotFound);
    await expectCode(t.admin.secrets.getSecret({ name: "OTHER" }), Code.NotFound);
  });

  it("an update without text or fields keeps the value and changes grants and metadata", async () => {
    await set("GRANTED", "canary-keep", { description: "first" });
    const res = await t.admin.secrets.setSecrets({ secrets: [{ name: "GRANTED", description: "second", allowedAgents: ["bot"] }] });
    expect(res.secrets[0]?.version).toBe(2n);
    const got = await t.admin.secrets.getSecret({ name: "GRANTED" });
    expect(got.text).toBe("canary-keep");
    expect(got.meta?.description).toBe("second");
    expect(got.meta?.allowedAgents).toEqual(["bot"]);
    await expectCode(t.admin.secrets.setSecrets({ secrets: [{ name: "MISSING", description: "x" }] }), Code.NotFound, /send text or fields/);
  });

  it("deletes every version for good; deleting again is NOT_FOUND", async () => {
    await set("GONE", "a");
    await set("GONE", "b");
    await t.admin.secrets.deleteSecret({ name: "GONE" });
    await expectCode(t.admin.secrets.getSecret({ name: "GONE" }), Code.NotFound);
    await expectCode(t.admin.secrets.getSecret({ name: "GONE", version: 1n }), Code.NotFound);
    await expectCode(t.admin.secrets.deleteSecret({ name: "GONE" }), Code.NotFound);
    const again = await set("GONE", "c");
    expect(again.secrets[0]?.version).toBe(1n);
  });

  it("lists names in pages with opaque tokens and a prefix filter, never values", async () => {
    const names = Array.from({ length: 25 }, (_, i) => `APP_${String(i).padStart(2, "0")}`);
    await t.admin.secrets.setSecrets({ secrets: [...names.map((name) => ({ name, text: "canary-list" })), { name: "OTHER", text: "x" }] });
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await t.admin.secrets.listSecrets({ namePrefix: "APP_", pageSize: 10, pageToken });
      seen.push(...page.secrets.map((s) => s.name));
      expect(Buffer.from(toBinary(ListSecretsResponseSchema, page)).includes("canary-list")).toBe(false);
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "");
    expect(seen).toEqual(names);
    expect(pages).toBe(3);
    await expectCode(t.admin.secrets.listSecrets({ pageToken: "garbage" }), Code.InvalidArgument, /page_token/);
    const first = await t.admin.secrets.listSecrets({ namePrefix: "APP_", pageSize: 10 });
    await expectCode(t.admin.secrets.listSecrets({ namePrefix: "OTH", pageToken: first.nextPageToken }), Code.InvalidArgument, /page_token/);
  });

  it("keeps sessions apart from the tenant-wide scope", async () => {
    await set("SCOPED", "tenant-wide");
    await set("SCOPED", "in-session", {}, "conv-1");
    expect((await t.admin.secrets.getSecret({ name: "SCOPED" })).text).toBe("tenant-wide");
    expect((await t.admin.secrets.getSecret({ session: "conv-1", name: "SCOPED" })).text).toBe("in-session");
    expect((await t.admin.secrets.listSecrets({ session: "conv-1" })).secrets.map((s) => s.session)).toEqual(["conv-1"]);
    await expectCode(t.admin.secrets.getSecret({ session: "conv-2", name: "SCOPED" }), Code.NotFound);
  });

  it("isolates tenants: another tenant's secret answers NOT_FOUND exactly as a missing one", async () => {
    await set("SHARED_NAME", "canary-default-tenant");
    const other = await t.admin.tokens.createToken({ tenant: "acme", role: Role.ADMIN });
    const acme = t.as(other.token);
    const missing = await expectCode(acme.secrets.getSecret({ name: "NEVER_EXISTED" }), Code.NotFound);
    const foreign = await expectCode(acme.secrets.getSecret({ name: "SHARED_NAME" }), Code.NotFound);
    expect(foreign.rawMessage.replace("SHARED_NAME", "X")).toBe(missing.rawMessage.replace("NEVER_EXISTED", "X"));
    await expectCode(acme.secrets.deleteSecret({ name: "SHARED_NAME" }), Code.NotFound);
    expect((await acme.secrets.listSecrets({})).secrets).toEqual([]);
    await acme.secrets.setSecrets({ secrets: [{ name: "SHARED_NAME", text: "acme-value" }] });
    expect((await t.admin.secrets.getSecret({ name: "SHARED_NAME" })).text).toBe("canary-default-tenant");
  });

  it("never loses an update under concurrent writers, and never gives two writes one version", async () => {
    const writes = await Promise.all(Array.from({ length: 40 }, (_, i) => set("HOT", `w${i}`)));
    const versions = writes.map((w) => Number(w.secrets[0]!.version)).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // Check-and-set increments: every writer retries until its CAS lands; all 20 must count.
    await set("COUNTER", "0");
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (;;) {
          const cur = await t.admin.secrets.getSecret({ name: "COUNTER" });
          try {
            await set("COUNTER", String(Number(cur.text) + 1), { expectedVersion: cur.meta!.version });
            return;
          } catch {
            // lost the race: read again
          }
        }
      }),
    );
    expect((await t.admin.secrets.getSecret({ name: "COUNTER" })).text).toBe("20");
  });

  it("answers DATA_LOSS when stored ciphertext fails authentication", async () => {
    await set("CORRUPT", "canary-corrupt");
    for await (const [key, value] of t.app.store.scan({ gte: "val\0", lt: "val\u0001" })) {
      const broken = Uint8Array.from(value);
      broken[broken.length - 1]! ^= 0xff;
      await t.app.store.write([{ type: "put", key, value: broken }]);
    }
    await expectCode(t.admin.secrets.getSecret({ name: "CORRUPT" }), Code.DataLoss, /failed authentication/);
  });
});
