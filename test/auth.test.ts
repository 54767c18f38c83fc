// Tokens and roles: missing, bad, revoked and expired tokens; who may mint what; agent tokens' limits.
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Role } from "../client/index.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { expectCode } from "./support/expect-code.js";

describe("tokens and auth", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp();
  });
  afterEach(async () => {
    vi.useRealTimers();
    await t.close();
  });

  it("rejects a missing, malformed or unknown token with UNAUTHENTICATED", async () => {
    await expectCode(t.as(undefined).secrets.listSecrets({}), Code.Unauthenticated, /authorization: expected header/);
    await expectCode(t.as("not-a-veil-token").secrets.listSecrets({}), Code.Unauthenticated);
    await expectCode(t.as(`veil_${"A".repeat(43)}`).secrets.listSecrets({}), Code.Unauthenticated, /unknown token/);
  });

  it("health needs no token", async () => {
    const { createClient, createRouterTransport } = await import("@connectrpc/connect");
    const { Health, HealthCheckResponse_ServingStatus } = await import("../gen/grpc/health/v1/health_pb.js");
    const health = createClient(Health, createRouterTransport(t.app.routes, { router: { interceptors: t.app.interceptors } }));
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("stores tokens only as hashes and shows the plaintext once", async () => {
    const created = await t.admin.tokens.createToken({ role: Role.ADMIN, description: "ci" });
    expect(created.token).toMatch(/^veil_[A-Za-z0-9_-]{43}$/);
    for await (const [, value] of t.app.store.scan({})) expect(Buffer.from(value).includes(created.token)).toBe(false);
    const listed = await t.admin.tokens.listTokens({});
    expect(listed.tokens.map((x) => x.tokenId)).toContain(created.tokenId);
    expect(JSON.stringify(listed.tokens.map((x) => x.tokenId + x.description))).not.toContain(created.token);
  });

  it("revocation takes effect on the next call", async () => {
    const created = await t.admin.tokens.createToken({ role: Role.ADMIN });
    const client = t.as(created.token);
    await client.secrets.listSecrets({});
    await t.admin.tokens.revokeToken({ tokenId: created.tokenId });
    await expectCode(client.secrets.listSecrets({}), Code.Unauthenticated, /revoked/);
    expect((await t.admin.tokens.listTokens({})).tokens.find((x) => x.tokenId === created.tokenId)?.revoked).toBe(true);
  });

  it("an expired token is UNAUTHENTICATED", async () => {
    const created = await t.admin.tokens.createToken({ role: Role.AGENT, agent: "bot", ttlSeconds: 60n });
    const client = t.as(created.token);
    await client.secrets.listSecrets({});
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 61_000);
    await expectCode(client.secrets.listSecrets({}), Code.Unauthenticated, /expired/);
  });

  it("a tenant admin mints only for its own tenant; the operator for any", async () => {
    const acmeAdmin = await t.admin.tokens.createToken({ tenant: "acme", role: Role.ADMIN });
    expect(acmeAdmin.info?.tenant).toBe("acme");
    const acme = t.as(acmeAdmin.token);
    await expectCode(acme.tokens.createToken({ tenant: "default", role: Role.ADMIN }), Code.PermissionDenied, /tenant: /);
    const own = await acme.tokens.createToken({ role: Role.AGENT, agent: "bot" });
    expect(own.info?.tenant).toBe("acme");
    await expectCode(acme.tokens.revokeToken({ tokenId: (await t.admin.tokens.listTokens({})).tokens[0]!.tokenId }), Code.NotFound);
    await expectCode(acme.tokens.listTokens({ tenant: "default" }), Code.PermissionDenied);
    expect((await t.admin.tokens.listTokens({ tenant: "acme" })).tokens).toHaveLength(2);
  });

  it("agent tokens cannot write secrets or manage tokens", async () => {
    const agent = t.as((await t.admin.tokens.createToken({ role: Role.AGENT, agent: "bot" })).token);
    await expectCode(agent.secrets.setSecrets({ secrets: [{ name: "X", text: "y" }] }), Code.PermissionDenied);
    await expectCode(agent.secrets.deleteSecret({ name: "X" }), Code.PermissionDenied);
    await expectCode(agent.tokens.createToken({ role: Role.AGENT, agent: "bot" }), Code.PermissionDenied);
    await expectCode(agent.tokens.listTokens({}), Code.PermissionDenied);
  });

  it("agent tokens read only secrets they are agent readers of, and list only those granted to them", async () => {
    await t.admin.secrets.setSecrets({
      secrets: [
        { name: "FOR_ALL", text: "all", agentReaders: ["bot"] },
        { name: "FOR_BOT", text: "bot", allowedAgents: ["bot"], agentReaders: ["bot"] },
        { name: "FOR_OTHER", text: "other", allowedAgents: ["other"], agentReaders: ["other"] },
      ],
    });
    const bot = t.as((await t.admin.tokens.createToken({ role: Role.AGENT, agent: "bot" })).token);
    expect((await bot.secrets.getSecret({ name: "FOR_ALL" })).text).toBe("all");
    expect((await bot.secrets.getSecret({ name: "FOR_BOT" })).text).toBe("bot");
    await expectCode(bot.secrets.getSecret({ name: "FOR_OTHER" }), Code.NotFound, /^name: no secret named FOR_OTHER$/);
    expect((await bot.secrets.listSecrets({})).secrets.map((s) => s.name)).toEqual(["FOR_ALL", "FOR_BOT"]);
  });
});

describe("request validation", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  const big = "x".repeat(64 * 1024 + 1);
  const cases: { name: string; call: (t: TestApp) => Promise<unknown>; message: RegExp }[] = [
    { name: "name starting with a digit", call: (t) => t.admin.secrets.setSecrets({ secrets: [{ name: "1ABC", text: "v" }] }), message: /secrets\[0\]\.name: must match/ },
    { name: "name with a dash", call: (t) => t.admin.secrets.setSecrets({ secrets: [{ name: "MY-KEY", text: "v" }] }), message: /secrets\[0\]\.name/ },
    { name: "name of 65 chars", call: (t) => t.admin.secrets.setSecrets({ secrets: [{ name: `A${"b".repeat(64)}`, text: "v" }] }), message: /1-64 chars/ },
    { name: "empty name", call: (t) => t.admin.secrets.getSecret({ name: "" }), message: /^name: must match/ },
    { name: "text over 64 KiB", call: (t) => t.admin.secrets.setSecrets({ secrets: [{ name: "BIG", text: big }] }), message: /secrets\[0\]\.text: value must be at most 65536 bytes/ },
    { name: "fields over 64 KiB", call: (t) => t.admin.secrets.setSecrets({ secrets: [{ name: "BIG", fields: { a: big } }] }), message: /secrets\[0\]\.fields: value must be at most/ },
    { name: "text and fields together", call: (t) => t.admin.secrets.setSecrets({ secrets: [{ name: "BOTH", text: "a", fields: { b: "c" } }] }), message: /either text or fields/ },
    { name: "description over 1 KiB", call: (t) => t.admin.secrets.setSecrets({ secrets: [{ name: "D", text: "v", description: "d".repeat(1025) }] }), message: /secrets\[0\]\.description: must be at most 1024 bytes/ },
    { name: "33 metadata entries", call: (t) => t.admin.secrets.setSecrets({ secrets: [{ name: "M", text: "v", metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])) }] }), message: /metadata: must have at most 32 entries/ },
    { name: "metadata value over 512 chars", call: (t) => t.admin.secrets.setSecrets({ secrets: [{ name: "M", text: "v", metadata: { k: "v".repeat(513) } }] }), message: /at most 512 chars/ },
    { name: "1001 secrets in one call", call: (t) => t.admin.secrets.setSecrets({ secrets: Array.from({ length: 1001 }, (_, i) => ({ name: `S${i}`, text: "v" })) }), message: /secrets: must hold at most 1000 secrets per call/ },
    { name: "empty batch", call: (t) => t.admin.secrets.setSecrets({ secrets: [] }), message: /secrets: must hold at least one/ },
    { name: "duplicate name in a batch", call: (t) => t.admin.secrets.setSecrets({ secrets: [{ name: "A", text: "1" }, { name: "A", text: "2" }] }), message: /secrets\[1\]\.name: A appears more than once/ },
    { name: "bad session", call: (t) => t.admin.secrets.listSecrets({ session: "has space" }), message: /^session: must be empty or match/ },
    { name: "page size over 1000", call: (t) => t.admin.secrets.listSecrets({ pageSize: 1001 }), message: /page_size: must be at most 1000/ },
    { name: "agent token without agent", call: (t) => t.admin.tokens.createToken({ role: Role.AGENT }), message: /agent: is required for ROLE_AGENT/ },
    { name: "token without role", call: (t) => t.admin.tokens.createToken({}), message: /role: must be ROLE_ADMIN or ROLE_AGENT/ },
    { name: "bad tenant", call: (t) => t.admin.tokens.createToken({ tenant: "Bad Tenant", role: Role.ADMIN }), message: /tenant: must match/ },
    { name: "bad token id", call: (t) => t.admin.tokens.revokeToken({ tokenId: "nope" }), message: /token_id: must be a token id/ },
  ];
  for (const c of cases) {
    it(`rejects ${c.name} with INVALID_ARGUMENT naming the field and rule`, async () => {
      const error = await expectCode(c.call(t), Code.InvalidArgument, c.message);
      expect(error.rawMessage).not.toContain("x".repeat(100));
    });
  }

  it("writes nothing when a request is invalid", async () => {
    await t.admin.secrets.setSecrets({ secrets: [{ name: "SAFE", text: "before" }] });
    await expectCode(t.admin.secrets.setSecrets({ secrets: [{ name: "SAFE", text: "after" }, { name: "BIG", text: big }] }), Code.InvalidArgument);
    expect((await t.admin.secrets.getSecret({ name: "SAFE" })).text).toBe("before");
  });
});
