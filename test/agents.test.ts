// The agent directory: every agent from tokens and grants, and per agent the secrets it may inject and read, as a conversation start would judge them.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../client/index.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { useCliServer } from "./support/cli.js";
import { expectCode } from "./support/expect-code.js";

const CANARY = "agents-canary-7d1c";

describe("AgentService", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
    const mint = (agent: string, extra: { ttlSeconds?: bigint; allowNetwork?: boolean } = {}) => t.admin.tokens.createToken({ role: Role.AGENT, agent, ...extra });
    await mint("bot");
    await mint("bot", { allowNetwork: true });
    const revoked = await mint("retired");
    await t.admin.tokens.revokeToken({ tokenId: revoked.tokenId });
    await mint("other");
    await t.admin.secrets.setSecrets({
      secrets: [
        { name: "OPEN", text: `${CANARY}-open`, description: "every agent" },
        { name: "BOT_ONLY", text: `${CANARY}-bot`, allowedAgents: ["bot"], agentReaders: ["bot"] },
        // Named in a grant before any token exists for it: the directory still lists it.
        { name: "FUTURE", text: `${CANARY}-future`, allowedAgents: ["planner"] },
      ],
    });
    // In session s1 BOT_ONLY is shadowed by a copy granted to other only.
    await t.admin.secrets.setSecrets({ session: "s1", secrets: [{ name: "BOT_ONLY", text: `${CANARY}-s1`, allowedAgents: ["other"] }] });
  });
  afterAll(() => t.close());

  it("lists agents from tokens (active ones counted) and from grants", async () => {
    const { agents } = await t.admin.agents.listAgents({});
    const byName = Object.fromEntries(agents.map((a) => [a.name, { tokens: a.activeTokens, grants: a.namedInGrants, network: a.allowNetwork }]));
    expect(byName).toEqual({
      bot: { tokens: 2, grants: 1, network: true },
      other: { tokens: 1, grants: 0, network: false },
      planner: { tokens: 0, grants: 1, network: false },
      retired: { tokens: 0, grants: 0, network: false },
    });
    expect(agents.map((a) => a.name)).toEqual(["bot", "other", "planner", "retired"]);
  });

  it("answers which secrets an agent may inject and read, with the session layering a conversation uses", async () => {
    const view = async (agent: string, session = "") =>
      (await t.admin.agents.getAgentAccess({ agent, session })).secrets.map((s) => `${s.name}${s.session ? `@${s.session}` : ""}:${s.read ? "read" : "inject"}${s.everyAgent ? ":all" : ""}`);
    expect(await view("bot")).toEqual(["BOT_ONLY:read", "OPEN:inject:all"]);
    expect(await view("other")).toEqual(["OPEN:inject:all"]);
    expect(await view("planner")).toEqual(["FUTURE:inject", "OPEN:inject:all"]);
    expect(await view("bot", "s1")).toEqual(["OPEN:inject:all"]);
    expect(await view("other", "s1")).toEqual(["BOT_ONLY@s1:inject", "OPEN:inject:all"]);
    // The directory agrees with what a conversation start decides (the same policy).
    const other = t.as((await t.admin.tokens.createToken({ role: Role.AGENT, agent: "other" })).token);
    await expectCode(other.startConversation({ agent: "other", secrets: ["BOT_ONLY"], commands: [] })[Symbol.asyncIterator]().next(), Code.PermissionDenied);
  });

  it("is for admins, validates the agent name, and never carries a value", async () => {
    const bot = t.as((await t.admin.tokens.createToken({ role: Role.AGENT, agent: "bot" })).token);
    await expectCode(bot.agents.listAgents({}), Code.PermissionDenied);
    await expectCode(bot.agents.getAgentAccess({ agent: "bot" }), Code.PermissionDenied);
    await expectCode(t.admin.agents.getAgentAccess({ agent: "bad name" }), Code.InvalidArgument, /agent: must match/);
    const answers = JSON.stringify([await t.admin.agents.listAgents({}), await t.admin.agents.getAgentAccess({ agent: "bot" })], (_k, v) => (typeof v === "bigint" ? String(v) : v));
    expect(answers).not.toContain(CANARY);
    const events = (await t.admin.audit.listAuditEvents({ action: "agent.access" })).events;
    expect(events.some((e) => e.detail === "agent bot")).toBe(true);
  });
});

describe("veil agent", () => {
  const { veil } = useCliServer(CANARY);

  it("ls and show answer from the directory, as tables and JSON", () => {
    expect(veil(["token", "create", "--agent", "bot"]).code).toBe(0);
    expect(veil(["secret", "set", "BOT_KEY", "--agent", "bot", "--reader", "bot"], CANARY).code).toBe(0);
    expect(veil(["agent", "show", "nobody"])).toMatchObject({ code: 0, stdout: "", stderr: "agent nobody may use no secret (and has no active token)\n" });
    expect(veil(["secret", "set", "SHARED"], CANARY).code).toBe(0);
    const ls = veil(["agent", "ls"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^AGENT\s+ACTIVE TOKENS\s+NAMED IN GRANTS\s+NETWORK\nbot\s+1\s+1\s+no\n$/);
    const show = veil(["agent", "show", "bot", "--json"]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout.trim().split("\n").map((l) => JSON.parse(l) as { name: string; read: boolean; everyAgent: boolean })).toMatchObject([
      { name: "BOT_KEY", read: true, everyAgent: false },
      { name: "SHARED", read: false, everyAgent: true },
    ]);
    expect(veil(["agent", "show"])).toMatchObject({ code: 2, stderr: expect.stringContaining("expected one AGENT name") });
    expect(ls.stdout + show.stdout).not.toContain(CANARY);
  });
});
