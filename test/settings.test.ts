// Settings and sealed tokens over the network: a frontend stores an LLM key once and never sees it again.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { collect, createVeilClient, Expose, Role, type VeilClient } from "../client/index.js";
import { expectCode } from "./support/expect-code.js";
import { grpcJsClient } from "./support/grpc-js.js";
import { startTestServer, type TestServer } from "./support/server.js";

const LLM_KEY = "sk-ant-canary-LLM-93jd82hf73";

describe("settings and sealed tokens", () => {
  let s: TestServer;
  let admin: VeilClient;
  beforeAll(async () => {
    s = await startTestServer();
    admin = await createVeilClient({ baseUrl: s.url, token: s.token });
  });
  afterAll(async () => {
    await s.close();
    expect(s.logs.join("\n")).not.toContain("canary-LLM");
  });

  it("stores the key once; a client fetches it sealed, starts a conversation with it, and never sees it again", async () => {
    const updated = await admin.settings.updateSettings({
      settings: { llm: { model: "claude-sonnet", baseUrl: "https://llm.example", apiKey: LLM_KEY }, options: { theme: "dark" } },
    });
    expect(updated.settings?.llm?.apiKey).toBe("**********");

    // The frontend: an agent token, which can read settings only redacted or sealed.
    const agentToken = (await admin.tokens.createToken({ role: Role.AGENT, agent: "coder" })).token;
    const frontend = await createVeilClient({ baseUrl: s.url, token: agentToken, protocol: "connect" });
    const redacted = await frontend.settings.getSettings({});
    expect(redacted.settings?.llm).toMatchObject({ model: "claude-sonnet", baseUrl: "https://llm.example", apiKey: "**********" });
    expect(redacted.settings?.options).toEqual({ theme: "dark" });
    const sealed = await frontend.settings.getSettings({ expose: Expose.SEALED });
    const token = sealed.settings!.llm!.apiKey!;
    expect(token).toMatch(/^veil:sealed:v1:[A-Za-z0-9_-]+$/);
    expect(token).not.toContain(LLM_KEY);
    expect(Buffer.from(token.slice(15), "base64url").includes(LLM_KEY)).toBe(false);

    const run = await collect(
      frontend.startConversation({
        sealedSecrets: { OPENAI_API_KEY: token },
        commands: ['echo "key=$OPENAI_API_KEY"; printf %s "$OPENAI_API_KEY" | wc -c', 'printf %s "$OPENAI_API_KEY" | base64'],
        endWhenDone: true,
      }),
    );
    expect(run.started?.secrets).toEqual(["OPENAI_API_KEY"]);
    expect(run.commands[0]?.stdoutText).toBe(`key=<secret-hidden>\n${LLM_KEY.length}\n`);
    expect(run.commands[1]?.stdoutText).toBe("<secret-hidden>\n");
  });

  it("injects the tenant's LLM settings on request", async () => {
    const run = await collect(
      admin.startConversation({ injectSettings: true, commands: ['echo "$LLM_MODEL $LLM_BASE_URL $LLM_API_KEY"'], endWhenDone: true }),
    );
    expect(run.started?.secrets).toEqual(["LLM_API_KEY", "LLM_BASE_URL", "LLM_MODEL"]);
    expect(run.commands[0]?.stdoutText).toBe("claude-sonnet https://llm.example <secret-hidden>\n");
  });

  it("refuses tampered, foreign-tenant and expired tokens with the same INVALID_ARGUMENT", async () => {
    const token = (await admin.settings.getSettings({ expose: Expose.SEALED })).settings!.llm!.apiKey!;
    const body = Buffer.from(token.slice(15), "base64url");
    body[body.length - 3]! ^= 1;
    const tampered = `veil:sealed:v1:${body.toString("base64url")}`;
    const acme = await createVeilClient({ baseUrl: s.url, token: (await admin.tokens.createToken({ tenant: "acme", role: Role.ADMIN })).token });
    const message = /^sealed_secrets\[K\]: not a valid sealed token for this tenant$/;
    await expectCode(collect(admin.startConversation({ sealedSecrets: { K: tampered }, commands: [] })), Code.InvalidArgument, message);
    await expectCode(collect(admin.startConversation({ sealedSecrets: { K: "veil:sealed:v1:!!" }, commands: [] })), Code.InvalidArgument, message);
    await expectCode(collect(acme.startConversation({ sealedSecrets: { K: token }, commands: [] })), Code.InvalidArgument, message);
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 25 * 3600 * 1000);
      await expectCode(collect(admin.startConversation({ sealedSecrets: { K: token }, commands: [] })), Code.InvalidArgument, message);
    } finally {
      vi.useRealTimers();
    }
  });

  it("applies partial updates: absent fields stay, \"\" clears, options merge", async () => {
    await admin.settings.updateSettings({ settings: { llm: { model: "claude-opus" }, options: { lang: "en", theme: "" } } });
    let now = (await admin.settings.getSettings({})).settings!;
    expect(now.llm).toMatchObject({ model: "claude-opus", baseUrl: "https://llm.example", apiKey: "**********" });
    expect(now.options).toEqual({ lang: "en" });
    await admin.settings.updateSettings({ settings: { llm: { apiKey: "" }, options: {} } });
    now = (await admin.settings.getSettings({ expose: Expose.SEALED })).settings!;
    expect(now.llm?.apiKey).toBeUndefined();
    await expectCode(admin.settings.updateSettings({ settings: { llm: { baseUrl: "ftp://x" }, options: {} } }), Code.InvalidArgument, /settings\.llm\.base_url: must be an http\(s\) URL/);
    await admin.settings.updateSettings({ settings: { llm: { apiKey: LLM_KEY }, options: {} } });
  });

  it("keeps settings apart per tenant and stores the key only as ciphertext", async () => {
    const acme = await createVeilClient({ baseUrl: s.url, token: (await admin.tokens.createToken({ tenant: "acme", role: Role.ADMIN })).token });
    expect((await acme.settings.getSettings({})).settings?.llm?.apiKey).toBeUndefined();
    for await (const [, value] of s.server.app.store.scan({})) expect(Buffer.from(value).includes(LLM_KEY)).toBe(false);
  });

  it("works from an independent @grpc/grpc-js client", async () => {
    const client = grpcJsClient(s.port, "SettingsService", s.token);
    try {
      const got = await client.unary<{ settings: { llm: { api_key: string; model: string } } }>("GetSettings", { expose: "EXPOSE_SEALED" });
      expect(got.settings.llm.api_key).toMatch(/^veil:sealed:v1:/);
      expect(got.settings.llm.model).toBe("claude-opus");
    } finally {
      client.close();
    }
  });
});
