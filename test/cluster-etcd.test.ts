// Several `veil serve --store etcd` processes on a real 3-member etcd cluster: coherence, a server killed, conversations through non-owners.
import { spawnSync } from "node:child_process";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, createVeilClient, Role } from "../client/index.js";
import { TEST_MASTER_KEY } from "./support/app.js";
import { VEIL_BIN } from "./support/child-server.js";
import { type ClusterProcess, spawnEtcdServer } from "./support/cluster.js";
import { type EtcdCluster, etcdMissing, etcdSkipNote, startEtcd } from "./support/etcd.js";
import { expectCode } from "./support/expect-code.js";
import { within } from "./support/within.js";
import { tempDir } from "./support/temp-dir.js";

const CANARY = "sk-canary-EtcdCluster-5b1c7e";

describe.skipIf(etcdMissing !== undefined)(`three Veil servers on a 3-member etcd cluster${etcdSkipNote}`, () => {
  let etcd: EtcdCluster;
  const dirs: { path: string; cleanup(): void }[] = [];
  const servers: ClusterProcess[] = [];
  let token: string;
  const client = (i: number, t = token) => createVeilClient({ baseUrl: servers[i]!.url, token: t, protocol: "grpc" });

  beforeAll(async () => {
    etcd = await startEtcd({ members: 3 });
    // One after another: the first start on the empty store mints the operator token.
    for (const id of ["s1", "s2", "s3"]) {
      const dir = tempDir("veil-etcd-server-");
      dirs.push(dir);
      servers.push(await spawnEtcdServer(id, etcd.endpoints, dir.path));
    }
    token = servers[0]!.token!;
    await (await client(0)).secrets.setSecrets({ secrets: [{ name: "API_KEY", text: CANARY }] });
  }, 120_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.kill9()));
    await etcd?.stop();
    for (const s of servers) expect(s.stderr()).not.toContain("canary-EtcdCluster");
    for (const d of dirs) d.cleanup();
  });

  it("writes the operator token once, and a write through one server reads through the others at once", async () => {
    expect(servers.map((s) => s.token !== undefined)).toEqual([true, false, false]);
    const [a, b, c] = await Promise.all([client(0), client(1), client(2)]);
    for (let i = 0; i < 20; i++) {
      await [a, b, c][i % 3]!.secrets.setSecrets({ secrets: [{ name: `K${i}`, text: `v${i}` }] });
      expect((await [a, b, c][(i + 1) % 3]!.secrets.getSecret({ name: `K${i}` })).text).toBe(`v${i}`);
    }
  });

  it("refuses a token revoked on one server on the others within well under a second", async () => {
    const a = await client(0);
    const { token: t, tokenId } = await a.tokens.createToken({ role: Role.ADMIN });
    const [onB, onC] = await Promise.all([client(1, t), client(2, t)]);
    await onB.secrets.listSecrets({});
    await onC.secrets.listSecrets({});
    await a.tokens.revokeToken({ tokenId });
    const ms = await within(5000, async () => {
      await expectCode(onB.secrets.listSecrets({}), Code.Unauthenticated, /revoked/);
      await expectCode(onC.secrets.listSecrets({}), Code.Unauthenticated, /revoked/);
    });
    expect(ms).toBeLessThan(1000);
  });

  it("drives a conversation started on one server through the others", async () => {
    const [a, b, c] = await Promise.all([client(0), client(1), client(2)]);
    const id = (await collect(a.startConversation({ secrets: ["API_KEY"], keepOnDisconnect: true }))).started!.conversationId;
    expect(id).toMatch(/^conv_s1_/);
    expect((await b.exec(id, 'echo "key=$API_KEY"; export SEEN=1')).stdoutText).toBe("key=<secret-hidden>\n");
    expect((await c.exec(id, 'echo "seen=$SEEN"')).stdoutText).toBe("seen=1\n");
    await c.conversations.endConversation({ conversationId: id });
    await expectCode(b.exec(id, "true"), Code.NotFound, /conversation_id/);
  });

  it("refuses to start on etcd when no peer could dial it (--host 0.0.0.0 without --advertise-url)", async () => {
    const dir = tempDir("veil-etcd-server-");
    dirs.push(dir);
    const args = ["serve", "--port", "0", "--host", "0.0.0.0", "--insecure-listen", "--data-dir", dir.path, "--store", "etcd", "--etcd-endpoints", etcd.endpoints.join(",")];
    const run = spawnSync(process.execPath, [VEIL_BIN, ...args], { env: { PATH: process.env.PATH ?? "", VEIL_MASTER_KEY: TEST_MASTER_KEY }, encoding: "utf8", timeout: 30_000 });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--advertise-url \(or VEIL_ADVERTISE_URL\): needed with a shared store when --host is 0\.0\.0\.0/);
  });

  it("keeps serving when a server is SIGKILLed, and says its conversations ended with it", async () => {
    const [a, c] = await Promise.all([client(0), client(2)]);
    const id = (await collect(c.startConversation({ secrets: ["API_KEY"], keepOnDisconnect: true }))).started!.conversationId;
    expect(id).toMatch(/^conv_s3_/);
    await servers[2]!.kill9();
    // The others serve on: writes and reads, through either.
    const b = await client(1);
    await a.secrets.setSecrets({ secrets: [{ name: "AFTER_KILL", text: "still-here" }] });
    expect((await b.secrets.getSecret({ name: "AFTER_KILL" })).text).toBe("still-here");
    // At once: the dead server does not answer; once its lease lapses (10 s): it is no longer serving.
    await expectCode(a.exec(id, "true"), Code.Unavailable, /conversation conv_s3_\S+ (runs|ran) on server s3/);
    await within(20_000, () => expectCode(a.exec(id, "true"), Code.Unavailable, /ran on server s3, which is no longer serving; its conversations ended with it/).then(() => {}));
  }, 40_000);
});
