// Role x action x grant: what admin and agent tokens may do with granted and ungranted secrets.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, Role, type VeilClient } from "../client/index.js";
import { startTestApp, type TestApp } from "./support/app.js";

type Outcome = "ok" | "denied" | "hidden";

describe("agent grants", () => {
  let t: TestApp;
  let clients: Record<"admin" | "bot" | "other", VeilClient>;

  beforeAll(async () => {
    t = await startTestApp();
    const token = async (agent: string) => (await t.admin.tokens.createToken({ role: Role.AGENT, agent })).token;
    clients = { admin: t.admin, bot: t.as(await token("bot")), other: t.as(await token("other")) };
    await t.admin.secrets.setSecrets({
      secrets: [
        { name: "OPEN", text: "open-value", allowedAgents: [] },
        { name: "BOT_ONLY", text: "bot-value", allowedAgents: ["bot"] },
      ],
    });
  });
  afterAll(async () => {
    await t.close();
  });

  async function outcome(call: () => Promise<unknown>): Promise<Outcome> {
    try {
      await call();
      return "ok";
    } catch (error) {
      const code = ConnectError.from(error).code;
      if (code === Code.PermissionDenied) return "denied";
      throw error;
    }
  }

  const actions: Record<string, (c: VeilClient, secret: string) => Promise<unknown>> = {
    get: (c, name) => c.secrets.getSecret({ name }),
    declare: (c, name) => collect(c.startConversation({ secrets: [name], commands: [], endWhenDone: true })),
    list: async (c, name) => {
      const names = (await c.secrets.listSecrets({})).secrets.map((s) => s.name);
      if (!names.includes(name)) throw new ConnectError("hidden", Code.PermissionDenied);
    },
    write: (c, name) => c.secrets.setSecrets({ secrets: [{ name, description: "touched" }] }),
    delete: (c, name) => c.secrets.deleteSecret({ name: `${name}_MISSING` }).catch((e: unknown) => {
      if (ConnectError.from(e).code === Code.NotFound) return; // reached the vault: allowed
      throw e;
    }),
  };

  const expected: Record<string, Record<"admin" | "bot" | "other", [open: Outcome, botOnly: Outcome]>> = {
    get: { admin: ["ok", "ok"], bot: ["ok", "ok"], other: ["ok", "denied"] },
    declare: { admin: ["ok", "ok"], bot: ["ok", "ok"], other: ["ok", "denied"] },
    list: { admin: ["ok", "ok"], bot: ["ok", "ok"], other: ["ok", "denied"] },
    write: { admin: ["ok", "ok"], bot: ["denied", "denied"], other: ["denied", "denied"] },
    delete: { admin: ["ok", "ok"], bot: ["denied", "denied"], other: ["denied", "denied"] },
  };

  for (const [action, byRole] of Object.entries(expected)) {
    for (const [role, [open, botOnly]] of Object.entries(byRole) as ["admin" | "bot" | "other", [Outcome, Outcome]][]) {
      it(`${role} ${action}: OPEN=${open}, BOT_ONLY=${botOnly}`, async () => {
        expect(await outcome(() => actions[action]!(clients[role], "OPEN"))).toBe(open);
        expect(await outcome(() => actions[action]!(clients[role], "BOT_ONLY"))).toBe(botOnly);
      });
    }
  }

  it("agents never mint tokens, change settings or read the audit trail", async () => {
    for (const agent of [clients.bot, clients.other]) {
      expect(await outcome(() => agent.tokens.createToken({ role: Role.AGENT, agent: "bot" }))).toBe("denied");
      expect(await outcome(() => agent.settings.updateSettings({ settings: { options: { a: "b" } } }))).toBe("denied");
      expect(await outcome(() => agent.audit.listAuditEvents({}))).toBe("denied");
    }
  });

  it("an admin changes grants without re-sending the value; updated_at moves, the value stays", async () => {
    const before = await t.admin.secrets.getSecret({ name: "OPEN" });
    await new Promise((r) => setTimeout(r, 5));
    await t.admin.secrets.setSecrets({ secrets: [{ name: "OPEN", allowedAgents: ["other"] }] });
    const after = await t.admin.secrets.getSecret({ name: "OPEN" });
    expect(after.text).toBe("open-value");
    expect(after.meta?.allowedAgents).toEqual(["other"]);
    expect(after.meta!.updatedAt!.seconds * 1000n + BigInt(after.meta!.updatedAt!.nanos) / 1_000_000n).toBeGreaterThan(
      before.meta!.updatedAt!.seconds * 1000n + BigInt(before.meta!.updatedAt!.nanos) / 1_000_000n,
    );
    expect(after.meta?.createdAt).toEqual(before.meta?.createdAt);
    expect(await outcome(() => clients.bot.secrets.getSecret({ name: "OPEN" }))).toBe("denied");
    expect((await clients.other.secrets.getSecret({ name: "OPEN" })).text).toBe("open-value");
  });
});
