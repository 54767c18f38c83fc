// Several Veil servers on one store (in-process, real ports, one memory store): coherence, registry and conversation forwarding.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, Role, type VeilClient } from "../client/index.js";
import { createPeerProof, PEER_HEADER } from "../server/cluster/peer-proof.js";
import { ConfigError, parseServerConfig } from "../server/config.js";
import { TEST_MASTER_KEY } from "./support/app.js";
import { type MemoryCluster, startMemoryCluster } from "./support/cluster.js";
import { expectCode } from "./support/expect-code.js";
import { within } from "./support/within.js";

const CANARY = "sk-canary-Cluster-7d3e9f01a2b4";

async function startOn(client: VeilClient, request: Parameters<VeilClient["startConversation"]>[0] = {}) {
  const run = await collect(client.startConversation({ secrets: ["API_KEY"], ...request }));
  return run.started!.conversationId;
}

describe("several servers on one store", () => {
  let c: MemoryCluster;
  let a: VeilClient;
  let b: VeilClient;

  beforeAll(async () => {
    c = await startMemoryCluster(3);
    a = await c.nodes[0]!.as(c.token);
    b = await c.nodes[1]!.as(c.token);
    await a.secrets.setSecrets({ secrets: [{ name: "API_KEY", text: CANARY, allowedAgents: ["bot"] }] });
  });
  afterAll(async () => {
    await c.close();
    for (const n of c.nodes) expect(n.logs.join("\n")).not.toContain("canary-Cluster");
  });

  it("mints the operator token once per store, and a write through one server reads through another at once", async () => {
    expect(c.nodes.filter((n) => n.server.app.operatorToken !== undefined)).toHaveLength(1);
    await a.secrets.setSecrets({ secrets: [{ name: "WRITTEN_ON_A", text: "value-one" }] });
    const got = await b.secrets.getSecret({ name: "WRITTEN_ON_A" });
    expect(got.text).toBe("value-one");
    await b.secrets.setSecrets({ secrets: [{ name: "WRITTEN_ON_A", text: "value-two", expectedVersion: 1n }] });
    expect(Number((await a.secrets.getSecret({ name: "WRITTEN_ON_A" })).meta?.version)).toBe(2);
    // Page tokens from one server work on another.
    await a.secrets.setSecrets({ secrets: ["P1", "P2", "P3"].map((name) => ({ name, text: "x" })) });
    const first = await a.secrets.listSecrets({ namePrefix: "P", pageSize: 2 });
    const rest = await b.secrets.listSecrets({ namePrefix: "P", pageSize: 2, pageToken: first.nextPageToken });
    expect([...first.secrets, ...rest.secrets].map((s) => s.name)).toEqual(["P1", "P2", "P3"]);
  });

  it("applies grants and settings changed on one server on every other from the next call", async () => {
    const { token } = await a.tokens.createToken({ role: Role.AGENT, agent: "reader" });
    const readerOnB = await c.nodes[1]!.as(token);
    await a.secrets.setSecrets({ secrets: [{ name: "GRANTED", text: "g-value", allowedAgents: ["reader"], agentReaders: ["reader"] }] });
    expect((await readerOnB.secrets.getSecret({ name: "GRANTED" })).text).toBe("g-value");
    await a.secrets.setSecrets({ secrets: [{ name: "GRANTED", text: "g-value", allowedAgents: ["reader"], agentReaders: [] }] });
    await expectCode(readerOnB.secrets.getSecret({ name: "GRANTED" }), Code.PermissionDenied);
    await a.settings.updateSettings({ settings: { llm: { model: "model-from-a" } } });
    expect((await b.settings.getSettings({})).settings?.llm?.model).toBe("model-from-a");
  });

  it("refuses a token revoked on one server on every other within well under a second", async () => {
    const { token, tokenId } = await a.tokens.createToken({ role: Role.ADMIN });
    const onB = await c.nodes[1]!.as(token);
    const onC = await c.nodes[2]!.as(token);
    // Both servers have it cached now.
    await onB.secrets.listSecrets({});
    await onC.secrets.listSecrets({});
    await a.tokens.revokeToken({ tokenId });
    const ms = await within(1000, async () => {
      await expectCode(onB.secrets.listSecrets({}), Code.Unauthenticated, /revoked/);
      await expectCode(onC.secrets.listSecrets({}), Code.Unauthenticated, /revoked/);
    });
    expect(ms).toBeLessThan(1000);
  });

  it("drives a conversation started on one server through another: output masked, input, signal, end", async () => {
    const id = await startOn(a, { keepOnDisconnect: true });
    // The id names its server, so any server routes it without a lookup per conversation.
    expect(id).toMatch(/^conv_s1_[0-9a-f]{24}$/);
    const out = await b.exec(id, 'echo "key=$API_KEY"; pwd > /tmp/where; export FROM_B=yes');
    expect(out.stdoutText).toBe("key=<secret-hidden>\n");
    // State lives on the owner: the next command, through a third server, sees it.
    const third = await c.nodes[2]!.as(c.token);
    expect((await third.exec(id, 'echo "$FROM_B"')).stdoutText).toBe("yes\n");
    // SendInput and SignalCommand reach the command on the owner.
    const events = b.conversations.runCommand({ conversationId: id, command: "read line; echo got=$line; sleep 30", stdin: true })[Symbol.asyncIterator]();
    const started = await events.next();
    const commandId = started.value.event.value.commandId as string;
    await b.conversations.sendInput({ conversationId: id, commandId, data: new TextEncoder().encode("hello\n"), eof: false });
    let output = "";
    for (;;) {
      const next = await events.next();
      if (next.value.event.case === "output") output += new TextDecoder().decode(next.value.event.value.data);
      if (output.includes("got=hello")) break;
    }
    await b.conversations.signalCommand({ conversationId: id, commandId, signal: "SIGTERM" });
    let exited: { exitCode: number } | undefined;
    for (let next = await events.next(); !next.done; next = await events.next()) {
      if (next.value.event.case === "commandExited") exited = next.value.event.value;
    }
    expect(exited?.exitCode).not.toBe(0);
    // The owner's trail says the calls came through the other server.
    const trail = await a.audit.listAuditEvents({ action: "conversation.run", pageSize: 100 });
    expect(trail.events.map((e) => e.detail)).toContain("forwarded_by=s2");
    expect(trail.events.map((e) => e.detail)).toContain("forwarded_to=s1");
    expect(c.nodes[0]!.logs.some((l) => /"msg":"forwarded call"/.test(l) && l.includes(`"conversationId":"${id}"`) && l.includes('"forwardedBy":"s2"'))).toBe(true);
    const input = await a.audit.listAuditEvents({ action: "conversation.input", pageSize: 100 });
    expect(input.events.map((e) => e.detail)).toContain(`command=${commandId} bytes=6 forwarded_by=s2`);
    await b.conversations.endConversation({ conversationId: id });
    expect(c.nodes[0]!.server.app.conversations.size).toBe(0);
    await expectCode(a.exec(id, "true"), Code.NotFound, /conversation_id/);
    await expectCode(b.exec(id, "true"), Code.NotFound, /conversation_id/);
  });

  it("forwards the caller's own credentials: a forwarded call can do nothing the caller could not", async () => {
    const id = await startOn(a, { agent: "bot" });
    const { token } = await a.tokens.createToken({ role: Role.AGENT, agent: "other" });
    const otherOnB = await c.nodes[1]!.as(token);
    await expectCode(otherOnB.exec(id, "true"), Code.NotFound, /conversation_id/);
    await expectCode((await c.nodes[1]!.as("veil_not-a-real-token")).exec(id, "true"), Code.Unauthenticated);
    await b.conversations.endConversation({ conversationId: id });
  });

  it("refuses a forged, replayed or foreign-key peer header instead of trusting it", async () => {
    const id = await startOn(a, { keepOnDisconnect: true });
    const procedure = "veil.v1.ConversationService/RunCommand";
    const withPeer = (value: string) => ({ headers: { [PEER_HEADER]: value } });
    const foreignKey = createPeerProof(Buffer.alloc(32, 9), "s2").sign({ procedure, conversationId: id });
    const ours = createPeerProof(Buffer.from(TEST_MASTER_KEY, "base64"), "s2");
    const otherCall = ours.sign({ procedure, conversationId: "conv_s1_000000000000000000000000" });
    const stale = ours.sign({ procedure, conversationId: id }, Date.now() - 10 * 60_000);
    for (const [server, forged] of [
      [a, "v1.s2.1.AAAA"],
      [b, foreignKey],
      [a, foreignKey],
      [b, otherCall],
      [a, stale],
    ] as const) {
      await expectCode(server.exec(id, "echo should-not-run", withPeer(forged)), Code.Unauthenticated, new RegExp(PEER_HEADER));
    }
    // Even a valid proof adds no authority: the caller's token is still checked.
    const valid = ours.sign({ procedure, conversationId: id });
    await expectCode((await c.nodes[0]!.as("veil_nope")).exec(id, "true", withPeer(valid)), Code.Unauthenticated, /token/);
    await a.conversations.endConversation({ conversationId: id });
  });

  it("passes cancellation and deadlines through: a client cancelling a forwarded command stops it on the owner", async () => {
    const owner = c.nodes[0]!.server.app.conversations;
    const id = await startOn(a);
    await expectCode(collect(b.conversations.runCommand({ conversationId: id, command: "sleep 30" }, { timeoutMs: 400 })), Code.DeadlineExceeded);
    // The deadline dropped the stream on the owner too: the conversation ended there (it was not kept).
    await within(3000, async () => expect(owner.size).toBe(0));
    const id2 = await startOn(a);
    const abort = new AbortController();
    const running = collect(b.run(id2, "sleep 30", { signal: abort.signal }));
    await within(3000, async () => expect(owner.find({ tenant: "default" }, id2).running).toBe(1));
    abort.abort();
    await expectCode(running, Code.Canceled);
    await within(3000, async () => expect(owner.size).toBe(0));
  });

  it("says where a conversation went when its server stopped, and NOT_FOUND for ids naming no server", async () => {
    const d = await c.add();
    const onD = await d.as(c.token);
    const id = await startOn(onD, { keepOnDisconnect: true });
    expect(id).toMatch(/^conv_s4_/);
    await d.close();
    const gone = new RegExp(`conversation ${id} ran on server s4, which is no longer serving; its conversations ended with it`);
    await expectCode(b.exec(id, "true"), Code.Unavailable, gone);
    await expectCode(b.conversations.endConversation({ conversationId: id }), Code.Unavailable, gone);
    await expectCode(b.conversations.sendInput({ conversationId: id, commandId: "cmd_1", data: new Uint8Array(), eof: true }), Code.Unavailable, gone);
    await expectCode(b.exec(`conv_${"0".repeat(24)}`, "true"), Code.NotFound, /conversation_id/);
    await expectCode(b.exec("conv_S1_nope", "true"), Code.InvalidArgument, /conversation_id/);
  });

  it("refuses to start a second live server with the same id, and keys each server's audit events by its id", async () => {
    await expect(c.add(["--server-id", "s1"])).rejects.toThrow(/--server-id s1: a server with this id is registered at http:\/\/127\.0\.0\.1:\d+/);
    const keys: string[] = [];
    for await (const [key] of c.store.scan({ gte: "aud\0", lt: "aud\u0001" })) keys.push(key);
    for (const id of ["s1", "s2", "s3"]) expect(keys.some((k) => k.endsWith(id))).toBe(true);
  });

  it("reports a server that is registered but not answering as UNAVAILABLE, naming it", async () => {
    // A crashed server's entry lingers until its lease lapses (etcd): simulate one at a dead port.
    await c.store.write([{ type: "put", key: "srv\0s9", value: new TextEncoder().encode(JSON.stringify({ id: "s9", url: "http://127.0.0.1:1", startedAt: "" })) }]);
    await expectCode(b.exec(`conv_s9_${"a".repeat(24)}`, "true"), Code.Unavailable, /runs on server s9 \(http:\/\/127\.0\.0\.1:1\), which did not answer/);
    await c.store.write([{ type: "del", key: "srv\0s9" }]);
  });
});

describe("server identity flags", () => {
  it("validates --server-id and --advertise-url, and refuses a shared store with an address no peer can dial", async () => {
    const env = { VEIL_MASTER_KEY: TEST_MASTER_KEY };
    expect(() => parseServerConfig(["--server-id", "Bad_Id"], env)).toThrow(/--server-id \(or VEIL_SERVER_ID\): must be 1-32 lowercase/);
    expect(() => parseServerConfig(["--advertise-url", "https://veil-1:8443/path"], env)).toThrow(/--advertise-url \(or VEIL_ADVERTISE_URL\): must be http/);
    expect(parseServerConfig(["--advertise-url", "https://veil-1.internal:8443"], env).advertiseUrl).toBe("https://veil-1.internal:8443");
    const { checkAdvertisable } = await import("../server/cluster/advertise.js");
    expect(() => checkAdvertisable({ host: "0.0.0.0" })).toThrow(ConfigError);
    expect(() => checkAdvertisable({ host: "0.0.0.0" })).toThrow(/--advertise-url .*--host is 0\.0\.0\.0/);
    expect(() => checkAdvertisable({ host: "0.0.0.0", advertiseUrl: "http://10.0.0.5:8080" })).not.toThrow();
  });
});
