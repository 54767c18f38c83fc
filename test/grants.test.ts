// Role x action x grant x reader: who sees, injects and reads which secret; network for agent tokens.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { collect, Outcome as AuditOutcome, Role, type VeilClient } from "../client/index.js";
import { recordKey } from "../server/domain/secret-records.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { expectCode } from "./support/expect-code.js";

/** ok: allowed; denied: PERMISSION_DENIED; hidden: NOT_FOUND (or absent from a listing), as if it did not exist. */
type Outcome = "ok" | "denied" | "hidden";
type Caller = "admin" | "bot" | "other" | "acme" | "acmeBot";

/** OPEN: every agent injects, no agent reads. OPEN_READ: every agent injects, bot reads. BOT_*: only bot injects. */
const SECRETS = [
  { name: "OPEN", text: "open-value", allowedAgents: [], agentReaders: [] },
  { name: "OPEN_READ", text: "open-read-value", allowedAgents: [], agentReaders: ["bot"] },
  { name: "BOT_ONLY", text: "bot-value", allowedAgents: ["bot"], agentReaders: [] },
  { name: "BOT_READ", text: "bot-read-value", allowedAgents: ["bot"], agentReaders: ["bot"] },
];

async function outcome(call: () => Promise<unknown>): Promise<Outcome> {
  try {
    await call();
    return "ok";
  } catch (error) {
    const code = ConnectError.from(error).code;
    if (code === Code.PermissionDenied) return "denied";
    if (code === Code.NotFound) return "hidden";
    throw error;
  }
}

describe("agent grants and readers", () => {
  let t: TestApp;
  let clients: Record<Caller, VeilClient>;

  beforeAll(async () => {
    t = await startTestApp();
    const token = async (agent: string, tenant = "") => (await t.admin.tokens.createToken({ tenant, role: Role.AGENT, agent })).token;
    clients = {
      admin: t.admin,
      bot: t.as(await token("bot")),
      other: t.as(await token("other")),
      acme: t.as((await t.admin.tokens.createToken({ tenant: "acme", role: Role.ADMIN })).token),
      // The same agent name in another tenant is another agent.
      acmeBot: t.as(await token("bot", "acme")),
    };
    await t.admin.secrets.setSecrets({ secrets: SECRETS });
  });
  afterAll(async () => {
    await t.close();
  });

  const actions: Record<string, (c: VeilClient, secret: string) => Promise<unknown>> = {
    get: (c, name) => c.secrets.getSecret({ name }),
    declare: (c, name) => collect(c.startConversation({ secrets: [name], commands: [], endWhenDone: true })),
    list: async (c, name) => {
      const names = (await c.secrets.listSecrets({})).secrets.map((s) => s.name);
      if (!names.includes(name)) throw new ConnectError("not listed", Code.NotFound);
    },
  };

  // Columns: OPEN, OPEN_READ, BOT_ONLY, BOT_READ.
  const expected: Record<string, Record<Caller, string>> = {
    get: {
      admin: "ok ok ok ok",
      bot: "denied ok denied ok",
      other: "denied denied hidden hidden",
      acme: "hidden hidden hidden hidden",
      acmeBot: "hidden hidden hidden hidden",
    },
    declare: {
      admin: "ok ok ok ok",
      bot: "ok ok ok ok",
      other: "ok ok denied denied",
      acme: "hidden hidden hidden hidden",
      acmeBot: "hidden hidden hidden hidden",
    },
    list: {
      admin: "ok ok ok ok",
      bot: "ok ok ok ok",
      other: "ok ok hidden hidden",
      acme: "hidden hidden hidden hidden",
      acmeBot: "hidden hidden hidden hidden",
    },
  };

  for (const [action, byCaller] of Object.entries(expected)) {
    for (const [caller, row] of Object.entries(byCaller) as [Caller, string][]) {
      it(`${caller} ${action}: ${row}`, async () => {
        const got = [];
        for (const { name } of SECRETS) got.push(await outcome(() => actions[action]!(clients[caller], name)));
        expect(got.join(" ")).toBe(row);
      });
    }
  }

  it("a reader gets the value; an injecting-only agent is told why; an ungranted one cannot tell the secret exists", async () => {
    expect((await clients.bot.secrets.getSecret({ name: "BOT_READ" })).text).toBe("bot-read-value");
    await expectCode(clients.bot.secrets.getSecret({ name: "BOT_ONLY" }), Code.PermissionDenied, /^name: agent bot may inject BOT_ONLY but is not an agent_reader of it/);
    const hidden = await expectCode(clients.other.secrets.getSecret({ name: "BOT_ONLY" }), Code.NotFound);
    const missing = await expectCode(clients.other.secrets.getSecret({ name: "NEVER_SET" }), Code.NotFound);
    expect(hidden.rawMessage.replace("BOT_ONLY", "X")).toBe(missing.rawMessage.replace("NEVER_SET", "X"));
    // A denial carries no value.
    const denied = await expectCode(clients.other.secrets.getSecret({ name: "OPEN" }), Code.PermissionDenied);
    expect(denied.rawMessage).not.toContain("open-value");
  });

  it("agent_readers round-trips in SetSecrets, ListSecrets and GetSecret metadata", async () => {
    const set = await t.admin.secrets.setSecrets({ secrets: [{ name: "RT", text: "v", agentReaders: ["zed", "bot", "bot"] }] });
    expect(set.secrets[0]?.agentReaders).toEqual(["bot", "zed"]);
    expect((await t.admin.secrets.listSecrets({ namePrefix: "RT" })).secrets[0]?.agentReaders).toEqual(["bot", "zed"]);
    expect((await clients.bot.secrets.getSecret({ name: "RT" })).meta?.agentReaders).toEqual(["bot", "zed"]);
  });

  it("validates agent_readers like allowed_agents, and a reader must be granted injection", async () => {
    await expectCode(
      t.admin.secrets.setSecrets({ secrets: [{ name: "V", text: "v", agentReaders: ["-bad"] }] }),
      Code.InvalidArgument,
      /^secrets\[0\]\.agent_readers\[0\]: must be an agent name matching/,
    );
    await expectCode(
      t.admin.secrets.setSecrets({ secrets: [{ name: "V", text: "v", allowedAgents: ["bot"], agentReaders: ["bot", "other"] }] }),
      Code.InvalidArgument,
      /^secrets\[0\]\.agent_readers\[1\]: agent other is not in allowed_agents; a reader must also be granted injection$/,
    );
    await expectCode(
      t.admin.secrets.setSecrets({ secrets: [{ name: "V", text: "v", agentReaders: Array.from({ length: 101 }, (_, i) => `a${i}`) }] }),
      Code.InvalidArgument,
      /agent_readers: must name at most 100 agents/,
    );
  });

  it("agents never write, delete, mint tokens, change settings or read the audit trail", async () => {
    for (const agent of [clients.bot, clients.other]) {
      expect(await outcome(() => agent.secrets.setSecrets({ secrets: [{ name: "BOT_READ", description: "touched" }] }))).toBe("denied");
      expect(await outcome(() => agent.secrets.deleteSecret({ name: "BOT_READ" }))).toBe("denied");
      expect(await outcome(() => agent.tokens.createToken({ role: Role.AGENT, agent: "bot" }))).toBe("denied");
      expect(await outcome(() => agent.settings.updateSettings({ settings: { options: { a: "b" } } }))).toBe("denied");
      expect(await outcome(() => agent.audit.listAuditEvents({}))).toBe("denied");
    }
  });

  it("a denied read is audited as DENIED, a hidden one as NOT_FOUND, with the agent", async () => {
    await outcome(() => clients.bot.secrets.getSecret({ name: "BOT_ONLY" }));
    await outcome(() => clients.other.secrets.getSecret({ name: "BOT_READ" }));
    const events = (await t.admin.audit.listAuditEvents({ action: "secret.get", pageSize: 1000 })).events;
    expect(events.find((e) => e.secretName === "BOT_ONLY" && e.agent === "bot")?.outcome).toBe(AuditOutcome.DENIED);
    expect(events.find((e) => e.secretName === "BOT_READ" && e.agent === "other")?.outcome).toBe(AuditOutcome.NOT_FOUND);
  });

  it("a keep-value update replaces grants like allowed_agents: readers not sent are cleared", async () => {
    await t.admin.secrets.setSecrets({ secrets: [{ name: "KEEP", text: "keep-value", allowedAgents: ["bot"], agentReaders: ["bot"] }] });
    expect((await clients.bot.secrets.getSecret({ name: "KEEP" })).text).toBe("keep-value");
    await t.admin.secrets.setSecrets({ secrets: [{ name: "KEEP", description: "no grants sent" }] });
    const after = await t.admin.secrets.getSecret({ name: "KEEP" });
    expect(after).toMatchObject({ text: "keep-value", meta: { version: 2n, allowedAgents: [], agentReaders: [] } });
    // Injection widened to every agent (allowed_agents empty), reading closed to every agent.
    expect(await outcome(() => clients.other.secrets.getSecret({ name: "KEEP" }))).toBe("denied");
    expect(await outcome(() => clients.bot.secrets.getSecret({ name: "KEEP" }))).toBe("denied");
    await t.admin.secrets.setSecrets({ secrets: [{ name: "KEEP", allowedAgents: ["other"], agentReaders: ["other"] }] });
    expect((await clients.other.secrets.getSecret({ name: "KEEP" })).text).toBe("keep-value");
    expect(await outcome(() => clients.bot.secrets.getSecret({ name: "KEEP" }))).toBe("hidden");
  });

  it("a record stored before agent_readers existed has no agent readers", async () => {
    await t.admin.secrets.setSecrets({ secrets: [{ name: "LEGACY", text: "legacy-value", agentReaders: ["bot"] }] });
    const key = recordKey("default", "", "LEGACY");
    const stored = JSON.parse(Buffer.from((await t.app.store.get(key))!).toString("utf8")) as Record<string, unknown>;
    delete stored.agentReaders;
    await t.app.store.write([{ type: "put", key, value: new TextEncoder().encode(JSON.stringify(stored)) }]);
    expect((await t.admin.secrets.getSecret({ name: "LEGACY" })).meta?.agentReaders).toEqual([]);
    expect(await outcome(() => clients.bot.secrets.getSecret({ name: "LEGACY" }))).toBe("denied");
    expect((await collect(clients.bot.startConversation({ secrets: ["LEGACY"], commands: [], endWhenDone: true }))).started?.secrets).toEqual(["LEGACY"]);
  });
});

describe("network for agent tokens", () => {
  let t: TestApp;
  let tokens: Record<"plain" | "networked", { token: string; tokenId: string }>;

  beforeAll(async () => {
    t = await startTestApp();
    tokens = {
      plain: await t.admin.tokens.createToken({ role: Role.AGENT, agent: "bot" }),
      networked: await t.admin.tokens.createToken({ role: Role.AGENT, agent: "bot", allowNetwork: true }),
    };
  });
  afterAll(async () => {
    await t.close();
  });

  const start = (c: VeilClient, agent = "") => collect(c.startConversation({ agent, network: true, commands: ["true"], endWhenDone: true }));

  it("an agent token without allow_network is refused before any shell starts, and the refusal is audited", async () => {
    const spawn = vi.spyOn(t.app.conversations, "start");
    try {
      await expectCode(start(t.as(tokens.plain.token)), Code.PermissionDenied, /^network: agent tokens need a token created with allow_network/);
      expect(spawn).not.toHaveBeenCalled();
    } finally {
      spawn.mockRestore();
    }
    const events = (await t.admin.audit.listAuditEvents({ action: "conversation.start" })).events;
    expect(events.find((e) => e.tokenId === tokens.plain.tokenId)).toMatchObject({ outcome: AuditOutcome.DENIED, agent: "bot" });
  });

  it("the same token without network: true starts as before", async () => {
    expect((await collect(t.as(tokens.plain.token).startConversation({ commands: ["true"], endWhenDone: true }))).commands[0]?.exitCode).toBe(0);
  });

  it("an agent token created with allow_network, and any admin token, may ask for network", async () => {
    for (const run of [() => start(t.as(tokens.networked.token)), () => start(t.admin), () => start(t.admin, "bot")]) {
      const result = await run();
      expect(result.started).toBeDefined();
      expect(result.commands[0]?.exitCode).toBe(0);
    }
  });

  it("ListTokens shows allow_network; it is refused on admin tokens", async () => {
    const listed = (await t.admin.tokens.listTokens({})).tokens;
    expect(listed.find((x) => x.tokenId === tokens.networked.tokenId)?.allowNetwork).toBe(true);
    expect(listed.find((x) => x.tokenId === tokens.plain.tokenId)?.allowNetwork).toBe(false);
    await expectCode(t.admin.tokens.createToken({ role: Role.ADMIN, allowNetwork: true }), Code.InvalidArgument, /^allow_network: is for ROLE_AGENT tokens only/);
  });
});
