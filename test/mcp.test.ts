// MCP as an agent host meets it: the SDK's own client over streamable HTTP (/mcp) and over stdio (`veil mcp`), against a real server.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVeilClient, Role, type VeilClient } from "../client/index.js";
import { detectSandbox } from "../server/domain/executor.js";
import { createLogger } from "../server/log.js";
import { createMcpRoute } from "../server/mcp/http-route.js";
import { OUTPUT_CAP_CHARS } from "../server/mcp/output.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { startUpstream, type Upstream } from "./support/egress-upstream.js";
import { VEIL_BIN } from "./support/child-server.js";
import { expectCode } from "./support/expect-code.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { tempDir } from "./support/temp-dir.js";

const hasBwrap = (await detectSandbox("required")).kind === "bubblewrap";
const noBwrap = hasBwrap ? "" : " (skipped: bubblewrap is not usable here)";
const CANARY = "mcp-canary-7Hq2Zx9Lw4Pv";
const OTHER_CANARY = "mcp-canary-other-Rt5Yn8";

interface RunOutput {
  stdout: string;
  stderr: string;
  exit_code: number;
  timed_out: boolean;
  truncated: boolean;
  conversation_id: string;
}

/** A tool call's result, checked never to carry a value anywhere (text, structured content, error). */
async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const all = JSON.stringify(result);
  expect(all).not.toContain(CANARY);
  expect(all).not.toContain(OTHER_CANARY);
  return result;
}

/** Runs `veil ARGS` with stdin closed and nothing of the test's environment but PATH. */
function spawnVeil(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [VEIL_BIN, ...args], { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once("close", (status) => resolve({ status, stdout, stderr })));
}

const out = (result: CallToolResult) => result.structuredContent as unknown as RunOutput;
const text = (result: CallToolResult) => (result.content as { type: string; text: string }[]).map((c) => c.text).join("\n");

/** One server for the file: secrets API_KEY (granted to bot) and OTHER (granted to someone else), an agent token for bot. */
function useServer() {
  const ctx = { s: undefined as unknown as TestServer, admin: undefined as unknown as VeilClient, agentToken: "", otherToken: "", bot: undefined as unknown as VeilClient };
  beforeAll(async () => {
    ctx.s = await startTestServer();
    ctx.admin = await createVeilClient({ baseUrl: ctx.s.url, token: ctx.s.token });
    await ctx.admin.secrets.setSecrets({
      secrets: [
        { name: "API_KEY", text: CANARY, description: "The test API key", allowedAgents: ["bot"] },
        { name: "OTHER", text: OTHER_CANARY, allowedAgents: ["someone-else"] },
      ],
    });
    ctx.agentToken = (await ctx.admin.tokens.createToken({ role: Role.AGENT, agent: "bot" })).token;
    ctx.otherToken = (await ctx.admin.tokens.createToken({ role: Role.AGENT, agent: "bot" })).token;
    ctx.bot = await createVeilClient({ baseUrl: ctx.s.url, token: ctx.agentToken });
  });
  afterAll(async () => {
    await ctx.s.close();
    const logs = ctx.s.logs.join("\n");
    expect(logs).not.toContain(CANARY);
    expect(logs).not.toContain(OTHER_CANARY);
  });
  return ctx;
}

/** An SDK client over streamable HTTP to <url>/mcp with a bearer token. */
async function httpClient(url: string, token: string, name = "test-host"): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

/** The tool contract every transport must show. */
async function expectToolContract(client: Client) {
  const { tools } = await client.listTools();
  const byName = new Map(tools.map((t) => [t.name, t]));
  expect([...byName.keys()].sort()).toEqual(["end_conversation", "list_secrets", "run_command"]);
  const run = byName.get("run_command")!;
  expect(Object.keys(run.inputSchema.properties ?? {}).sort()).toEqual(["command", "conversation_id", "secrets", "timeout_ms"]);
  expect(run.inputSchema.required).toEqual(["command"]);
  expect(Object.keys(run.outputSchema?.properties ?? {}).sort()).toEqual(["conversation_id", "exit_code", "stderr", "stdout", "timed_out", "truncated"]);
  expect(byName.get("end_conversation")!.inputSchema.required).toEqual(["conversation_id"]);
  expect(byName.get("list_secrets")!.inputSchema.required ?? []).toEqual([]);
  for (const tool of tools) expect(tool.description?.length).toBeGreaterThan(40);
}

/** The conversation is gone on the server: RunCommand for it answers NOT_FOUND (polled: session close is asynchronous). */
async function expectEnded(bot: VeilClient, conversationId: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await bot.exec(conversationId, "true");
    } catch (error) {
      await expectCode(Promise.reject(error), Code.NotFound);
      return;
    }
    if (Date.now() > deadline) throw new Error(`conversation ${conversationId} still runs after its session closed`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("MCP over streamable HTTP at /mcp", () => {
  const ctx = useServer();

  it("answers 401 with a Bearer challenge before any MCP processing, for a missing or bad token", async () => {
    const init = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } };
    for (const authorization of [undefined, "Bearer veil_not-a-real-token", "Basic abc"]) {
      const res = await fetch(`${ctx.s.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...(authorization ? { authorization } : {}) },
        body: JSON.stringify(init),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer /);
      expect(res.headers.get("mcp-session-id")).toBeNull();
    }
    // The SDK client fails to connect, saying so.
    await expect(httpClient(ctx.s.url, "veil_bad")).rejects.toThrow(/authorization: /);
  });

  it("lists the three tools with their contract schemas, and only the secrets the agent may use, without values", async () => {
    const { client } = await httpClient(ctx.s.url, ctx.agentToken);
    await expectToolContract(client);
    const listed = await call(client, "list_secrets");
    expect(listed.isError).toBeFalsy();
    expect(listed.structuredContent).toEqual({
      secrets: [{ name: "API_KEY", description: "The test API key", kind: "text", variables: ["API_KEY"], hosts: [] }],
    });
    expect(text(listed)).toContain("$API_KEY");
    expect(text(listed)).not.toContain("OTHER");
    await client.close();
  });

  it(`masks a secret a command prints, keeps cwd and exports across calls, and treats a non-zero exit as a result${noBwrap}`, async () => {
    if (!hasBwrap) return;
    const { client, transport } = await httpClient(ctx.s.url, ctx.agentToken);
    const first = await call(client, "run_command", { command: 'echo "key=$API_KEY"; mkdir -p sub && cd sub && export MARK=kept', secrets: ["API_KEY"] });
    expect(first.isError).toBeFalsy();
    expect(out(first)).toMatchObject({ stdout: "key=<secret-hidden>\n", exit_code: 0, timed_out: false, truncated: false });
    const id = out(first).conversation_id;
    expect(text(first)).toContain("key=<secret-hidden>");
    expect(text(first)).toContain(id);

    const second = await call(client, "run_command", { command: 'pwd; echo "mark=$MARK"; echo "$API_KEY" | base64; exit 7', conversation_id: id });
    expect(second.isError).toBeFalsy();
    expect(out(second).stdout).toMatch(/\/sub\nmark=kept\n<secret-hidden>/);
    expect(out(second)).toMatchObject({ exit_code: 7, conversation_id: id });

    // Declaring a secret the conversation does not hold is a tool error, not a silent no-op.
    const late = await call(client, "run_command", { command: "true", conversation_id: id, secrets: ["OTHER"] });
    expect(late.isError).toBe(true);
    expect(text(late)).toMatch(/^INVALID_ARGUMENT: secrets: OTHER not in this conversation/);

    const ended = await call(client, "end_conversation", { conversation_id: id });
    expect(ended.structuredContent).toEqual({ conversation_id: id, ended: true });
    await expectEnded(ctx.bot, id);
    await transport.terminateSession();
    await client.close();
  });

  it(`cuts a timed-out command and returns it as a normal result${noBwrap}`, async () => {
    if (!hasBwrap) return;
    const { client, transport } = await httpClient(ctx.s.url, ctx.agentToken);
    const slow = await call(client, "run_command", { command: "echo start; sleep 30", timeout_ms: 500 });
    expect(slow.isError).toBeFalsy();
    expect(out(slow)).toMatchObject({ stdout: "start\n", timed_out: true });
    expect(text(slow)).toMatch(/^timed out/);
    await transport.terminateSession();
    await client.close();
  });

  it(`cuts long output in the middle at the stated cap, saying so${noBwrap}`, async () => {
    if (!hasBwrap) return;
    const { client, transport } = await httpClient(ctx.s.url, ctx.agentToken);
    const long = await call(client, "run_command", { command: "echo BEGIN; head -c 50000 /dev/zero | tr '\\0' a; echo; echo END" });
    const { stdout, truncated } = out(long);
    expect(truncated).toBe(true);
    expect(stdout.startsWith("BEGIN\n")).toBe(true);
    expect(stdout.endsWith("END\n")).toBe(true);
    expect(stdout).toMatch(/\n\[\.\.\. \d+ characters cut by veil mcp \.\.\.\]\n/);
    expect(stdout.length).toBeLessThan(OUTPUT_CAP_CHARS + 100);
    expect(text(long)).toContain(`cut to ${OUTPUT_CAP_CHARS} characters per stream`);
    await transport.terminateSession();
    await client.close();
  });

  it("returns an ungranted or missing secret, a bad argument and a foreign conversation as tool errors with the API's message", async () => {
    const { client } = await httpClient(ctx.s.url, ctx.agentToken);
    const ungranted = await call(client, "run_command", { command: "echo $OTHER", secrets: ["OTHER"] });
    expect(ungranted.isError).toBe(true);
    // Existence is hidden from an agent the secret is not granted to.
    expect(text(ungranted)).toMatch(/^(NOT_FOUND|PERMISSION_DENIED): secrets\[0\]: /);
    const missing = await call(client, "run_command", { command: "true", secrets: ["NOPE"] });
    expect(text(missing)).toMatch(/^NOT_FOUND: secrets\[0\]: /);
    const bad = await call(client, "run_command", { command: "true", timeout_ms: -5 });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/timeout_ms/);
    const foreign = await call(client, "run_command", { command: "true", conversation_id: "conv_0123456789abcdef01234567" });
    expect(foreign.isError).toBe(true);
    expect(text(foreign)).toMatch(/^NOT_FOUND: conversation_id: no conversation "conv_0123456789abcdef01234567" in this MCP session/);
    for (const result of [ungranted, missing, bad, foreign]) expect(text(result)).not.toMatch(/\n\s+at /);
    await client.close();
  });

  it(`keeps a session's conversations to it: another session cannot drive them, another token cannot use the session, DELETE ends them${noBwrap}`, async () => {
    if (!hasBwrap) return;
    const a = await httpClient(ctx.s.url, ctx.agentToken, "host-a");
    const b = await httpClient(ctx.s.url, ctx.agentToken, "host-b");
    const started = await call(a.client, "run_command", { command: "echo hi" });
    const id = out(started).conversation_id;
    const stolen = await call(b.client, "run_command", { command: "echo stolen", conversation_id: id });
    expect(stolen.isError).toBe(true);
    expect(text(stolen)).toMatch(/^NOT_FOUND: conversation_id: /);
    expect((await call(b.client, "end_conversation", { conversation_id: id })).isError).toBe(true);

    // The same Mcp-Session-Id with another token is no session at all.
    const sessionId = a.transport.sessionId!;
    const hijack = await fetch(`${ctx.s.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${ctx.otherToken}`, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-06-18" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "run_command", arguments: { command: "echo hijacked", conversation_id: id } } }),
    });
    expect(hijack.status).toBe(404);
    expect(await hijack.text()).not.toContain("hijacked");

    // The conversation still works for its own session, until that session ends.
    expect(out(await call(a.client, "run_command", { command: "echo still", conversation_id: id })).stdout).toBe("still\n");
    await a.transport.terminateSession();
    await expectEnded(ctx.bot, id);
    await a.client.close();
    await b.transport.terminateSession();
    await b.client.close();
  });

  it("records the calls in the audit trail with the MCP client's name", async () => {
    const { client } = await httpClient(ctx.s.url, ctx.agentToken, "audit-host");
    await call(client, "list_secrets");
    await call(client, "run_command", { command: "true", secrets: ["NOPE"] });
    await client.close();
    const { events } = await ctx.admin.audit.listAuditEvents({ pageSize: 1000 });
    const mine = events.filter((e) => e.client === "mcp:audit-host");
    expect(mine.map((e) => [e.action, e.agent])).toEqual(
      expect.arrayContaining([
        ["secret.list", "bot"],
        ["conversation.start", "bot"],
      ]),
    );
    expect(JSON.stringify(events.map((e) => e.detail))).not.toContain(CANARY);
  });

  it("serves MCP to an HTTP/2 (h2c) client as well as HTTP/1.1", async () => {
    const session = http2.connect(ctx.s.url);
    const post = (message: object, headers: http2.OutgoingHttpHeaders = {}) =>
      new Promise<{ headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const req = session.request({
          ":method": "POST",
          ":path": "/mcp",
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          authorization: `Bearer ${ctx.agentToken}`,
          ...headers,
        });
        let head: http2.IncomingHttpHeaders = {};
        let body = "";
        req.on("response", (h) => (head = h));
        req.setEncoding("utf8");
        req.on("data", (d: string) => (body += d));
        req.on("end", () => resolve({ headers: head, body }));
        req.on("error", reject);
        req.end(JSON.stringify(message));
      });
    try {
      const init = await post({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "h2-host", version: "1" } } });
      expect(init.headers[":status"]).toBe(200);
      expect(init.headers.connection).toBeUndefined();
      const sessionId = init.headers["mcp-session-id"] as string;
      expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
      expect(init.body).toContain('"name":"veil"');
      const session2 = { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-06-18" };
      expect((await post({ jsonrpc: "2.0", method: "notifications/initialized" }, session2)).headers[":status"]).toBe(202);
      const listed = await post({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "list_secrets", arguments: {} } }, session2);
      expect(listed.headers[":status"]).toBe(200);
      expect(listed.body).toContain('"name":"API_KEY"');
      expect(listed.body).not.toContain(CANARY);
    } finally {
      session.close();
    }
  });
});

describe("veil mcp on stdio", () => {
  const ctx = useServer();

  /** The host's way: spawn `veil mcp --url --token` with nothing of the test's environment but PATH. */
  async function stdioClient(token: string, name = "stdio-host") {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [VEIL_BIN, "mcp", "--url", ctx.s.url, "--token", token],
      env: { PATH: process.env.PATH ?? "" },
      stderr: "pipe",
    });
    let stderr = "";
    transport.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const client = new Client({ name, version: "1.0.0" });
    await client.connect(transport);
    return { client, transport, stderr: () => stderr };
  }

  it("refuses a bad token at start: non-zero exit, the reason on stderr, nothing on stdout", async () => {
    // Asynchronously: the server answering the check runs in this very process.
    const res = await spawnVeil(["mcp", "--url", ctx.s.url, "--token", "veil_not-a-token"]);
    expect(res.status).toBe(4);
    expect(res.stdout).toBe("");
    expect(res.stderr).toMatch(/^veil mcp: UNAUTHENTICATED: authorization: /m);
  });

  it(`lists tools and secrets, masks output, keeps cwd, and ends its conversations when the host closes it${noBwrap}`, async () => {
    const { client, stderr } = await stdioClient(ctx.agentToken);
    await expectToolContract(client);
    expect((await call(client, "list_secrets")).structuredContent).toMatchObject({ secrets: [{ name: "API_KEY" }] });
    let id = "";
    if (hasBwrap) {
      const first = await call(client, "run_command", { command: 'cd /tmp && echo "$API_KEY"', secrets: ["API_KEY"] });
      expect(out(first)).toMatchObject({ stdout: "<secret-hidden>\n", exit_code: 0 });
      id = out(first).conversation_id;
      expect(out(await call(client, "run_command", { command: "pwd", conversation_id: id })).stdout).toBe("/tmp\n");
    }
    const ungranted = await call(client, "run_command", { command: "true", secrets: ["OTHER"] });
    expect(ungranted.isError).toBe(true);
    await client.close();
    if (hasBwrap) await expectEnded(ctx.bot, id);
    expect(stderr()).not.toContain(CANARY);
    // stderr holds log lines only (JSON), never protocol or values.
    for (const line of stderr().trim().split("\n").filter(Boolean)) expect(() => JSON.parse(line)).not.toThrow();

    const { events } = await ctx.admin.audit.listAuditEvents({ pageSize: 1000 });
    const actions = events.filter((e) => e.client === "mcp:stdio-host").map((e) => e.action);
    expect(actions).toContain("secret.list");
    expect(actions).toContain("conversation.start");
    if (hasBwrap) expect(actions).toContain("conversation.run");
  });
});

describe("MCP sessions over HTTP expire and are bounded per token", () => {
  let t: TestApp;
  let url = "";
  let server: http.Server;
  let agentToken = "";
  let tokenId = "";

  beforeAll(async () => {
    t = await startTestApp();
    await t.admin.secrets.setSecrets({ secrets: [{ name: "API_KEY", text: CANARY, allowedAgents: ["bot"] }] });
    ({ token: agentToken, tokenId } = await t.admin.tokens.createToken({ role: Role.AGENT, agent: "bot" }));
    // The route itself, with short limits, on a plain HTTP server: the same handler the real port mounts.
    const route = createMcpRoute({ app: t.app, logger: createLogger((line) => t.logs.push(line)), limits: { idleMs: 400, maxPerToken: 2 } });
    server = http.createServer((req, res) => (route.matches(req) ? route.handle(req, res) : res.writeHead(404).end()));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await t.close();
    expect(t.logs.join("\n")).not.toContain(CANARY);
  });

  const live = (id: string) => {
    try {
      t.app.conversations.find({ tenant: "default" }, id);
      return true;
    } catch {
      return false;
    }
  };
  const until = async (check: () => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  it("ends the least recently used session of a token beyond the bound, with its conversations", async () => {
    const first = await httpClient(url, agentToken, "first");
    let id = "";
    if (hasBwrap) id = out(await call(first.client, "run_command", { command: "true" })).conversation_id;
    const second = await httpClient(url, agentToken, "second");
    const third = await httpClient(url, agentToken, "third");
    // The first session is gone: its id is unknown now, and its conversation ended.
    await expect(first.client.listTools()).rejects.toThrow(/Session not found|404/);
    if (hasBwrap) await until(() => !live(id), "the evicted session's conversation to end");
    expect((await second.client.listTools()).tools).toHaveLength(3);
    expect((await third.client.listTools()).tools).toHaveLength(3);
    for (const c of [first, second, third]) await c.client.close();
  });

  it(`ends a session idle since its host went away, with its conversations, even once its token was revoked${noBwrap}`, async () => {
    if (!hasBwrap) return;
    const { client } = await httpClient(url, agentToken, "idle");
    const id = out(await call(client, "run_command", { command: "echo $API_KEY", secrets: ["API_KEY"] })).conversation_id;
    expect(live(id)).toBe(true);
    await t.admin.tokens.revokeToken({ tokenId });
    // The host goes away without DELETE (its open GET stream ends with it): after idleMs the sweep ends the
    // session, and the conversation with it, although the token can no longer call EndConversation.
    await client.close();
    expect(live(id)).toBe(true);
    await until(() => !live(id), "the idle session's conversation to end");
  });
});

describe(`done means: a host configured with veil mcp curls with $GITHUB_TOKEN and never receives the value${noBwrap}`, () => {
  const GITHUB_TOKEN = "ghp_mcpCanaryDoneMeans0123456789abcd";
  let upstream: Upstream;
  let s: TestServer;
  let agentToken = "";
  const dir = tempDir();

  beforeAll(async () => {
    if (!hasBwrap) return;
    upstream = await startUpstream();
    const caFile = join(dir.path, "upstream-ca.pem");
    writeFileSync(caFile, upstream.caPem);
    // The stand-in for api.github.com is on loopback, so the test allows private destinations explicitly.
    s = await startTestServer({ extraFlags: ["--egress-ca-file", caFile, "--egress-allow-private"] });
    const admin = await createVeilClient({ baseUrl: s.url, token: s.token });
    await admin.secrets.setSecrets({
      secrets: [{ name: "GITHUB_TOKEN", text: GITHUB_TOKEN, description: "GitHub API token", egressHosts: [`localhost:${upstream.port}`], allowedAgents: ["coder"] }],
    });
    agentToken = (await admin.tokens.createToken({ role: Role.AGENT, agent: "coder" })).token;
  });
  afterAll(async () => {
    await s?.close();
    await upstream?.close();
    dir.cleanup();
    if (s) expect(s.logs.join("\n")).not.toContain(GITHUB_TOKEN);
  });

  it.skipIf(!hasBwrap)("lists GITHUB_TOKEN by name and runs curl with it in a persistent terminal; the upstream gets the value, the agent never", async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [VEIL_BIN, "mcp", "--url", s.url, "--token", agentToken],
      env: { PATH: process.env.PATH ?? "" },
      stderr: "pipe",
    });
    let stderr = "";
    transport.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const client = new Client({ name: "done-means-host", version: "1.0.0" });
    await client.connect(transport);
    const results: CallToolResult[] = [];
    const tool = async (name: string, args: Record<string, unknown>) => {
      const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
      results.push(result);
      return result;
    };

    const listed = await tool("list_secrets", {});
    expect(listed.structuredContent).toEqual({
      secrets: [{ name: "GITHUB_TOKEN", description: "GitHub API token", kind: "text", variables: ["GITHUB_TOKEN"], hosts: [`localhost:${upstream.port}`] }],
    });
    const before = upstream.seen.length;
    const first = await tool("run_command", { command: "mkdir -p work && cd work", secrets: ["GITHUB_TOKEN"] });
    const id = out(first).conversation_id;
    const curl = await tool("run_command", {
      command: `pwd; curl -sS --fail -H "Authorization: Bearer $GITHUB_TOKEN" https://localhost:${upstream.port}/echo`,
      conversation_id: id,
    });
    expect(curl.isError, text(curl)).toBeFalsy();
    expect(out(curl).exit_code, out(curl).stderr).toBe(0);
    const [pwd, echoed] = out(curl).stdout.trim().split("\n");
    expect(pwd).toMatch(/\/work$/);
    // The upstream echoes the Authorization header back: the agent sees only a placeholder (or the mask), never the value.
    expect(JSON.parse(echoed!).auth).toMatch(/^Bearer (veil_ph_|<secret-hidden>)/);
    expect(upstream.seen.slice(before).map((r) => r.authorization)).toEqual([`Bearer ${GITHUB_TOKEN}`]);
    await client.close();

    expect(JSON.stringify(results)).not.toContain(GITHUB_TOKEN);
    expect(stderr).not.toContain(GITHUB_TOKEN);
  });
});
