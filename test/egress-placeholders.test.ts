// Secrets with egress hosts reach commands only as placeholders: env, files, /proc and output never hold the value.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, Expose, Inject, NetworkMode, Role, type VeilClient } from "../client/index.js";
import { expectCode } from "./support/expect-code.js";
import { grpcJsClient } from "./support/grpc-js.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { startTestServer } from "./support/server.js";

const OPENAI = `sk-proj-canary-EGRESS-${"x7Qp".repeat(10)}`;
const SHORTISH = "gh-canary-Eg1";
const DB = { user: "app-canary-EGu", password: "pw-canary-EGRESS-Zq8Xw3Vt" };
const LLM = "sk-ant-canary-EGLLM-93jd82hf73a9";
const PLAIN = "plain-canary-EGRESS-value";
const CANARY = /canary-(EGRESS|Eg1|EGu|EGLLM)/;
const PH = /^veil_ph_[A-Za-z0-9_]+$/;

/** Everything a command can see of its own secrets: env, /proc/self/environ, a file it writes, the workspace. */
const DUMP = "env; tr '\\0' '\\n' < /proc/self/environ; env > dump.txt; cat dump.txt; grep -r . . 2>/dev/null | head -c 100000";

describe("egress placeholders", () => {
  let t: TestApp;
  let admin: VeilClient;
  beforeAll(async () => {
    t = await startTestApp();
    admin = t.admin;
    await admin.secrets.setSecrets({
      secrets: [
        { name: "OPENAI_API_KEY", text: OPENAI, egressHosts: ["API.openai.com"] },
        { name: "GH", text: SHORTISH, egressHosts: ["*.github.com", "github.com"], egressBody: true },
        { name: "DB", fields: DB, egressHosts: ["db.example.com:5432"] },
        { name: "PLAIN", text: PLAIN },
      ],
    });
  });
  afterAll(async () => {
    await t.close();
    expect(t.logs.join("\n")).not.toMatch(CANARY);
  });

  it("stores and lists the hosts lowercased and sorted, with the body opt-in", async () => {
    const { secrets } = await admin.secrets.listSecrets({});
    const byName = Object.fromEntries(secrets.map((m) => [m.name, m]));
    expect(byName.OPENAI_API_KEY).toMatchObject({ egressHosts: ["api.openai.com"], egressBody: false });
    expect(byName.GH).toMatchObject({ egressHosts: ["*.github.com", "github.com"], egressBody: true });
    expect(byName.PLAIN?.egressHosts).toEqual([]);
  });

  it("injects a placeholder of the value's length and charset; the value is nowhere the command can look", async () => {
    const run = await collect(
      admin.startConversation({
        secrets: ["OPENAI_API_KEY", "GH", "DB", "PLAIN"],
        commands: ['printenv OPENAI_API_KEY; printenv GH; printenv DB_PASSWORD; printenv DB; printf %s "$PLAIN" | wc -c', DUMP],
        endWhenDone: true,
      }),
    );
    expect(run.started?.placeholders).toEqual(["DB", "DB_PASSWORD", "DB_USER", "GH", "OPENAI_API_KEY"]);
    expect(run.started?.secrets).toEqual(["DB", "GH", "OPENAI_API_KEY", "PLAIN"]);
    const [first, dump] = run.commands;
    const [key, gh, pw, json, plainLength] = first!.stdoutText.trimEnd().split("\n");
    expect(key).toMatch(PH);
    expect(key).toHaveLength(OPENAI.length);
    expect(gh).toMatch(PH);
    expect(gh).toHaveLength(24);
    expect(pw).toMatch(PH);
    expect(pw).toHaveLength(DB.password.length);
    const fields = JSON.parse(json!) as Record<string, string>;
    expect(fields.password).toBe(pw);
    expect(fields.user).toMatch(PH);
    expect(plainLength?.trim()).toBe(String(PLAIN.length));
    // The masker still hides real values (PLAIN) and leaves placeholders alone.
    expect(dump!.stdoutText).toContain(key!);
    expect(dump!.stdoutText).toContain("<secret-hidden>");
    const everything = run.commands.map((c) => c.stdoutText + c.stderrText).join("");
    expect(everything).not.toMatch(CANARY);
    expect(dump!.exitCode).toBe(0);
  });

  it("gives every conversation its own placeholders", async () => {
    const once = async () =>
      (await collect(admin.startConversation({ secrets: ["OPENAI_API_KEY"], commands: ["printenv OPENAI_API_KEY"], endWhenDone: true }))).commands[0]!.stdoutText;
    const [a, b] = [await once(), await once()];
    expect(a).toMatch(/^veil_ph_/);
    expect(a).not.toBe(b);
  });

  it("works with INJECT_REFERENCED: only the referenced names, as placeholders", async () => {
    const run = await collect(
      admin.startConversation({
        secrets: ["OPENAI_API_KEY", "DB"],
        inject: Inject.REFERENCED,
        commands: ['echo "k=$OPENAI_API_KEY"; echo "p=${DB_PASSWORD:-none}"', 'echo "d=${DB_PASSWORD:-none} k=${OPENAI_API_KEY:-none}"'],
        endWhenDone: true,
      }),
    );
    expect(run.started?.placeholders).toEqual(["DB", "DB_PASSWORD", "DB_USER", "OPENAI_API_KEY"]);
    const [first, second] = run.commands.map((c) => c.stdoutText);
    expect(first).toMatch(/^k=veil_ph_[A-Za-z0-9_]+\np=veil_ph_[A-Za-z0-9_]+\n$/);
    expect(second).toMatch(/^d=veil_ph_\S+ k=veil_ph_\S+\n$/);
    expect(first + second).not.toMatch(CANARY);
  });

  it("injects LLM_API_KEY with hosts as a placeholder, and a sealed token of it too", async () => {
    await admin.settings.updateSettings({ settings: { llm: { apiKey: LLM, apiKeyEgressHosts: "api.anthropic.com, *.Example.com" }, options: {} } });
    const read = await admin.settings.getSettings({});
    expect(read.settings?.llm?.apiKeyEgressHosts).toBe("*.example.com,api.anthropic.com");
    const sealed = (await admin.settings.getSettings({ expose: Expose.SEALED })).settings!.llm!.apiKey!;
    const run = await collect(
      admin.startConversation({
        injectSettings: true,
        sealedSecrets: { SEALED_KEY: sealed },
        commands: ["printenv LLM_API_KEY; printenv SEALED_KEY", DUMP],
        endWhenDone: true,
      }),
    );
    expect(run.started?.placeholders).toEqual(["LLM_API_KEY", "SEALED_KEY"]);
    const [llm, sealedShown] = run.commands[0]!.stdoutText.trimEnd().split("\n");
    expect(llm).toMatch(PH);
    expect(sealedShown).toMatch(PH);
    expect(llm).toHaveLength(LLM.length);
    expect(llm).not.toBe(sealedShown);
    expect(run.commands.map((c) => c.stdoutText + c.stderrText).join("")).not.toMatch(CANARY);

    // "" clears the hosts: the key is injected (masked) as before.
    await admin.settings.updateSettings({ settings: { llm: { apiKeyEgressHosts: "" }, options: {} } });
    const plain = await collect(admin.startConversation({ injectSettings: true, commands: ["printenv LLM_API_KEY"], endWhenDone: true }));
    expect(plain.started?.placeholders).toEqual([]);
    expect(plain.commands[0]?.stdoutText).toBe("<secret-hidden>\n");
  });

  it("lets an agent token use NETWORK_MODE_EGRESS, keeps network: true admin-only, and refuses both together", async () => {
    const agent = t.as((await admin.tokens.createToken({ role: Role.AGENT, agent: "bot" })).token);
    const run = await collect(
      agent.startConversation({ secrets: ["OPENAI_API_KEY"], networkMode: NetworkMode.EGRESS, egressAllow: ["pypi.org"], commands: ["true"], endWhenDone: true }),
    );
    expect(run.started?.placeholders).toEqual(["OPENAI_API_KEY"]);
    expect(run.commands[0]?.exitCode).toBe(0);
    await expectCode(collect(agent.startConversation({ network: true, commands: ["true"] })), Code.PermissionDenied, /network: agent tokens need/);
    await expectCode(
      collect(admin.startConversation({ network: true, networkMode: NetworkMode.EGRESS, commands: ["true"] })),
      Code.InvalidArgument,
      /network_mode: NETWORK_MODE_EGRESS cannot be combined with network: true/,
    );
    await expectCode(collect(admin.startConversation({ egressAllow: ["pypi.org"], commands: ["true"] })), Code.InvalidArgument, /egress_allow: needs network_mode/);
    await expectCode(
      collect(admin.startConversation({ networkMode: NetworkMode.EGRESS, egressAllow: ["https://pypi.org"], commands: ["true"] })),
      Code.InvalidArgument,
      /egress_allow\[0\]: must be a host/,
    );
  });

  it("exposes the binding to the gateway by an opaque egress id, only while the conversation lives", async () => {
    const events = admin.startConversation({ secrets: ["OPENAI_API_KEY", "DB"], networkMode: NetworkMode.EGRESS, egressAllow: ["PyPI.org"], keepOnDisconnect: true });
    let conversationId = "";
    for await (const e of events) {
      if (e.event.case === "started") conversationId = e.event.value.conversationId;
      break;
    }
    const c = t.app.conversations.find({ tenant: "default" }, conversationId);
    const binding = c.egress!;
    expect(binding.egressId).toMatch(/^eg_[0-9a-f]{32}$/);
    expect(binding.egressId).not.toContain(conversationId.slice(5));
    expect(binding).toMatchObject({ conversationId, tenant: "default", agent: "", networkMode: "egress", allow: ["pypi.org"] });
    expect(binding.tokenId).toMatch(/^tok_/);
    const rows = binding.substitutions.map((s) => [s.secret, s.hosts, s.body, s.value === OPENAI || s.value === DB.password || s.value === DB.user]);
    expect(rows.sort((a, b) => String(a[0]).localeCompare(String(b[0])))).toEqual([
      ["DB.password", ["db.example.com:5432"], false, true],
      ["DB.user", ["db.example.com:5432"], false, true],
      ["OPENAI_API_KEY", ["api.openai.com"], false, true],
    ]);
    expect(Object.isFrozen(binding)).toBe(true);
    expect(t.app.conversations.findByEgressId(binding.egressId)).toBe(c);
    expect(t.app.conversations.findByEgressId("eg_nope")).toBeUndefined();
    await admin.conversations.endConversation({ conversationId });
    expect(t.app.conversations.findByEgressId(binding.egressId)).toBeUndefined();
  });

  it("refuses bad egress hosts naming the field and the rule", async () => {
    const table: Array<[string[], RegExp]> = [
      [["https://api.openai.com"], /secrets\[0\]\.egress_hosts\[0\]: must be a host, host:port or \*\.domain/],
      [["*"], /secrets\[0\]\.egress_hosts\[0\]: /],
      [["*.com"], /egress_hosts\[0\]: a wildcard must cover a domain of at least two labels/],
      [["ok.com", "api.x.com:99999"], /egress_hosts\[1\]: port must be 1-65535/],
      [Array.from({ length: 33 }, (_, i) => `h${i}.example.com`), /egress_hosts: must hold at most 32 hosts/],
    ];
    for (const [hosts, rule] of table) {
      await expectCode(admin.secrets.setSecrets({ secrets: [{ name: "BAD", text: "v", egressHosts: hosts }] }), Code.InvalidArgument, rule);
    }
    await expectCode(admin.secrets.setSecrets({ secrets: [{ name: "BAD", text: "v", egressBody: true }] }), Code.InvalidArgument, /egress_body: needs egress_hosts/);
    await expectCode(
      admin.settings.updateSettings({ settings: { llm: { apiKeyEgressHosts: "ok.com,*" }, options: {} } }),
      Code.InvalidArgument,
      /settings\.llm\.api_key_egress_hosts: "\*"/,
    );
  });
});

describe("egress hosts over grpc-js", () => {
  it("round-trips egress_hosts and egress_body through a real gRPC peer", async () => {
    const s = await startTestServer();
    try {
      const secrets = grpcJsClient(s.port, "SecretService", s.token);
      const set = await secrets.unary<{ secrets: { egress_hosts: string[]; egress_body: boolean }[] }>("SetSecrets", {
        secrets: [{ name: "WIRE", text: "wire-canary-EGRESS-1234", egress_hosts: ["Api.Example.com:8443", "*.example.org"], egress_body: true }],
      });
      expect(set.secrets[0]).toMatchObject({ egress_hosts: ["*.example.org", "api.example.com:8443"], egress_body: true });
      const listed = await secrets.unary<{ secrets: { name: string; egress_hosts: string[] }[] }>("ListSecrets", { name_prefix: "WIRE" });
      expect(listed.secrets[0]?.egress_hosts).toEqual(["*.example.org", "api.example.com:8443"]);
    } finally {
      await s.close();
    }
  });
});
