// The audit trail: every read, write, delete, denial, conversation start and token change, never a value.
import { toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AuditEvent, collect, ListAuditEventsResponseSchema, Outcome, Role } from "../client/index.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { expectCode } from "./support/expect-code.js";

const CANARY = "canary-AUDIT-5e7c1a";

describe("audit trail", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  async function all(filter: { secretName?: string; action?: string } = {}): Promise<AuditEvent[]> {
    const events: AuditEvent[] = [];
    let pageToken = "";
    do {
      const page = await t.admin.audit.listAuditEvents({ ...filter, pageSize: 3, pageToken });
      expect(Buffer.from(toBinary(ListAuditEventsResponseSchema, page)).includes(CANARY)).toBe(false);
      events.push(...page.events);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return events;
  }

  it("records writes, reads, deletes, denials, conversation starts and token changes", async () => {
    await t.admin.secrets.setSecrets({ secrets: [{ name: "A", text: CANARY }, { name: "B", text: `${CANARY}-b`, allowedAgents: ["bot", "other"] }] });
    await t.admin.secrets.getSecret({ name: "A" });
    const created = await t.admin.tokens.createToken({ role: Role.AGENT, agent: "other" });
    const other = t.as(created.token);
    await expectCode(other.secrets.getSecret({ name: "B" }), Code.PermissionDenied);
    await expectCode(t.admin.secrets.getSecret({ name: "MISSING" }), Code.NotFound);
    const run = await collect(t.admin.startConversation({ secrets: ["A"], commands: ["true"], endWhenDone: true }));
    await t.admin.secrets.deleteSecret({ name: "A" });
    await t.admin.tokens.revokeToken({ tokenId: created.tokenId });

    const events = await all();
    const summary = events.map((e) => [e.action, e.secretName, Number(e.version), Outcome[e.outcome]]);
    expect(summary).toEqual(
      expect.arrayContaining([
        ["secret.set", "A", 1, "OK"],
        ["secret.set", "B", 1, "OK"],
        ["secret.get", "A", 1, "OK"],
        ["token.create", "", 0, "OK"],
        ["secret.get", "B", 0, "DENIED"],
        ["secret.get", "MISSING", 0, "NOT_FOUND"],
        ["conversation.start", "", 0, "OK"],
        ["secret.delete", "A", 1, "OK"],
        ["token.revoke", "", 0, "OK"],
      ]),
    );
    const start = events.find((e) => e.action === "conversation.start")!;
    expect(start.secretNames).toEqual(["A"]);
    expect(start.conversationId).toBe(run.started?.conversationId);
    const denial = events.find((e) => e.outcome === Outcome.DENIED)!;
    expect(denial.agent).toBe("other");
    expect(denial.tokenId).toBe(created.tokenId);
    const times = events.map((e) => e.time!.seconds * 1_000_000_000n + BigInt(e.time!.nanos));
    expect([...times].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(times);
  });

  it("filters by secret name, action and time", async () => {
    await t.admin.secrets.setSecrets({ secrets: [{ name: "X", text: CANARY }] });
    const mark = new Date();
    await new Promise((r) => setTimeout(r, 5));
    await t.admin.secrets.getSecret({ name: "X" });
    await t.admin.secrets.setSecrets({ secrets: [{ name: "Y", text: CANARY }] });
    expect((await all({ secretName: "X" })).map((e) => e.action)).toEqual(["secret.set", "secret.get"]);
    expect((await all({ action: "secret.set" })).map((e) => e.secretName)).toEqual(["X", "Y"]);
    const since = await t.admin.audit.listAuditEvents({ since: timestampFromDate(mark) });
    expect(since.events.map((e) => `${e.action}:${e.secretName}`)).toEqual(["secret.get:X", "secret.set:Y"]);
    const until = await t.admin.audit.listAuditEvents({ until: timestampFromDate(mark) });
    expect(until.events.map((e) => `${e.action}:${e.secretName}`)).toEqual(["secret.set:X"]);
  });

  it("tenants see only their own trail", async () => {
    await t.admin.secrets.setSecrets({ secrets: [{ name: "MINE", text: CANARY }] });
    const acme = t.as((await t.admin.tokens.createToken({ tenant: "acme", role: Role.ADMIN })).token);
    expect((await acme.audit.listAuditEvents({})).events).toEqual([]);
  });

  it("fails closed: when the trail cannot be written, the read is not answered and the write does not land", async () => {
    await t.admin.secrets.setSecrets({ secrets: [{ name: "GUARDED", text: CANARY }] });
    const store = t.app.store;
    const write = store.write.bind(store);
    store.write = async (ops, guards) => {
      if (ops.some((op) => op.key.startsWith("aud\0"))) throw new Error("disk full");
      return write(ops, guards);
    };
    try {
      const error = await expectCode(t.admin.secrets.getSecret({ name: "GUARDED" }), Code.Unavailable, /audit trail unavailable/);
      expect(error.rawMessage).not.toContain(CANARY);
      // The event rides in the write's own batch: the storage failure fails the write itself.
      await expectCode(t.admin.secrets.setSecrets({ secrets: [{ name: "GUARDED", text: "new" }] }), Code.Internal);
      await expectCode(collect(t.admin.startConversation({ commands: ["touch ran"] })), Code.Unavailable);
      expect(t.app.conversations.size).toBe(0);
    } finally {
      store.write = write;
    }
    const after = await t.admin.secrets.getSecret({ name: "GUARDED" });
    expect(after.text).toBe(CANARY);
    expect(after.meta?.version).toBe(1n);
  });
});
