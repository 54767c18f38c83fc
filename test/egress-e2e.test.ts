// The egress gateway end to end: a real server, bubblewrap, curl and Python inside, an HTTPS upstream on loopback with its own CA.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, createVeilClient, type VeilClient } from "../client/index.js";
import { NetworkMode } from "../gen/veil/v1/conversation_pb.js";
import { Role } from "../gen/veil/v1/token_pb.js";
import { detectSandbox } from "../server/domain/executor.js";
import { startUpstream, type Upstream } from "./support/egress-upstream.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { tempDir } from "./support/temp-dir.js";

const hasBwrap = (await detectSandbox("required")).kind === "bubblewrap";
const skipNote = hasBwrap ? "" : " (skipped: bubblewrap is not installed)";
const VALUE = "sk-live-egress-canary-0123456789abcdef";

describe.skipIf(!hasBwrap)(`egress gateway through a conversation${skipNote}`, () => {
  let upstream: Upstream;
  let server: TestServer;
  let admin: VeilClient;
  let agent: VeilClient;
  const dir = tempDir();

  beforeAll(async () => {
    upstream = await startUpstream();
    const caFile = join(dir.path, "upstream-ca.pem");
    writeFileSync(caFile, upstream.caPem);
    // The upstream is on loopback, so the test allows private destinations explicitly.
    server = await startTestServer({ extraFlags: ["--egress-ca-file", caFile, "--egress-allow-private"] });
    admin = await createVeilClient({ baseUrl: server.url, token: server.token, protocol: "grpc" });
    await admin.secrets.setSecrets({ secrets: [{ name: "API_KEY", text: VALUE, egressHosts: [`localhost:${upstream.port}`], agentReaders: [] }] });
    const { token } = await admin.tokens.createToken({ tenant: "default", role: Role.AGENT, agent: "coder" });
    agent = await createVeilClient({ baseUrl: server.url, token, protocol: "grpc" });
  });

  afterAll(async () => {
    await server?.close();
    await upstream?.close();
    dir.cleanup();
  });

  const run = (client: VeilClient, commands: string[], extra: { egressAllow?: string[] } = {}) =>
    collect(client.startConversation({ secrets: ["API_KEY"], commands, networkMode: NetworkMode.EGRESS, endWhenDone: true, ...extra }));

  it("curl and Python send the placeholder; the upstream receives the value; the echo comes back as the placeholder", async () => {
    const url = `https://localhost:${upstream.port}/echo`;
    const before = upstream.seen.length;
    const result = await run(agent, [
      `curl -s --fail -H "Authorization: Bearer $API_KEY" ${url}`,
      `/usr/bin/python3 -c 'import os,urllib.request as u; r=u.Request("${url}", headers={"Authorization": "Bearer "+os.environ["API_KEY"]}); print(u.urlopen(r).read().decode())'`,
      `/usr/bin/python3 -c 'import os,requests; print(requests.get("${url}", headers={"Authorization": "Bearer "+os.environ["API_KEY"]}).text)'`,
    ]);
    const placeholder = result.started?.placeholders;
    expect(placeholder).toEqual(["API_KEY"]);
    for (const command of result.commands) {
      expect(command.exitCode, command.stderrText).toBe(0);
      const echoed = JSON.parse(command.stdoutText) as { auth: string };
      expect(echoed.auth).toMatch(/^Bearer veil_ph_[A-Za-z0-9_]+$/);
      expect(echoed.auth.length).toBe(`Bearer ${VALUE}`.length);
    }
    const received = upstream.seen.slice(before);
    expect(received.map((r) => r.authorization)).toEqual([`Bearer ${VALUE}`, `Bearer ${VALUE}`, `Bearer ${VALUE}`]);
  });

  it("the value is nowhere inside: not in the environment, /proc or files", async () => {
    const result = await run(agent, [`env; cat /proc/self/environ; grep -rs "${VALUE.slice(0, 20)}" ~ /tmp /run /etc | head -5; echo done`]);
    const out = result.commands[0]!.stdoutText;
    expect(out).toContain("done");
    expect(out).toMatch(/API_KEY=veil_ph_/);
    expect(out).toContain("HTTPS_PROXY=http://127.0.0.1:3128");
    expect(out).not.toContain(VALUE);
    expect(out).not.toContain("<secret-hidden>");
  });

  it("a placeholder sent to another host is refused with 403 and audited; nothing reaches that host", async () => {
    const before = upstream.seen.length;
    const other = `127.0.0.2:${upstream.port}`;
    const result = await run(agent, [`curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $API_KEY" https://${other}/echo`], { egressAllow: [other] });
    expect(result.commands[0]!.stdoutText).toBe("403");
    expect(upstream.seen.slice(before).filter((r) => r.localAddress === "127.0.0.2")).toEqual([]);
    const { events } = await admin.audit.listAuditEvents({ action: "egress.denied", pageSize: 50 });
    const denied = events.find((e) => e.secretName === "API_KEY" && e.detail.includes(other));
    expect(denied).toBeDefined();
    expect(events.map((e) => `${e.secretName} ${e.detail} ${e.agent}`).join("\n")).not.toContain(VALUE);
    const uses = await admin.audit.listAuditEvents({ action: "egress.use", pageSize: 50 });
    expect(uses.events.map((e) => e.detail).join("\n")).not.toContain(VALUE);
    expect(uses.events.some((e) => e.secretName === "API_KEY" && e.detail.includes(`localhost:${upstream.port}`))).toBe(true);
  });

  it("a tool that ignores the proxy has no network at all", async () => {
    const result = await run(agent, [
      `curl -s --noproxy '*' --max-time 5 https://localhost:${upstream.port}/echo; echo "curl=$?"`,
      `getent hosts example.com; echo "getent=$?"`,
    ]);
    expect(result.commands[0]!.stdoutText).toMatch(/curl=(7|28)/);
    expect(result.commands[1]!.stdoutText).toMatch(/getent=[1-9]/);
  });

  it("an agent token may use egress mode, and still not unrestricted network", async () => {
    const egress = await run(agent, ["echo ok"]);
    expect(egress.commands[0]!.stdoutText).toBe("ok\n");
    await expect(collect(agent.startConversation({ commands: ["true"], network: true }))).rejects.toMatchObject({ code: 7 });
  });
});
