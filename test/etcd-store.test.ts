// The etcd backend against real etcd: a member SIGKILLed mid-burst loses no acknowledged write; Veil servers on --store etcd.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVeilClient } from "../client/index.js";
import { restoreBackup } from "../server/backup/restore.js";
import { ConfigError, parseServerConfig } from "../server/config.js";
import { VeilError } from "../server/errors.js";
import { createLogger } from "../server/log.js";
import { startServer, type VeilServer } from "../server/server.js";
import { openEtcdStore } from "../server/store/etcd-store.js";
import type { KvStore } from "../server/store/kv.js";
import { TEST_MASTER_KEY } from "./support/app.js";
import { type EtcdCluster, etcdMissing, etcdSkipNote, startEtcd } from "./support/etcd.js";
import { expectCode } from "./support/expect-code.js";
import { tempDir } from "./support/temp-dir.js";
import { testCa } from "./support/tls.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(check: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await sleep(50);
  }
}
const CANARY = `canary-ETCD-${randomBytes(4).toString("hex")}`;

describe.skipIf(etcdMissing !== undefined)(`etcd store on a 3-member cluster${etcdSkipNote}`, () => {
  let cluster: EtcdCluster;
  beforeAll(async () => {
    cluster = await startEtcd({ members: 3 });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("the leader SIGKILLed during a burst of concurrent writes: every acknowledged write is readable after, writes go on with 2 of 3, the member catches up", async () => {
    const prefix = `burst${randomBytes(4).toString("hex")}/`;
    const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix });
    const acked = new Map<string, string>();
    let ackedAfterKill = 0;
    let killed = false;
    let stop = false;
    let n = 0;
    const writer = async () => {
      while (!stop) {
        const key = `burst\0${String(n++).padStart(6, "0")}`;
        const value = `v-${key.slice(6)}`;
        try {
          await store.write([{ type: "put", key, value: enc.encode(value) }], [{ key, value: undefined }]);
          acked.set(key, value);
          if (killed) ackedAfterKill++;
        } catch {
          // Not acknowledged: it may or may not have landed; only acknowledged writes are promised.
        }
      }
    };
    const writers = Array.from({ length: 16 }, writer);
    await sleep(700);
    const victim = await cluster.leader();
    await cluster.kill(victim);
    killed = true;
    // Writes resume once the two survivors have elected a leader (seconds on a loaded machine); then a little more burst.
    await until(() => ackedAfterKill >= 20, 30_000);
    await sleep(500);
    stop = true;
    await Promise.all(writers);
    await store.close();
    expect(acked.size).toBeGreaterThan(50);

    const survivors = cluster.endpoints.filter((_, i) => i !== victim);
    const check = async (store: KvStore) => {
      const keys = [...acked.keys()];
      const values = await store.getMany(keys);
      const missing = keys.filter((k, i) => values[i] === undefined || dec.decode(values[i]) !== acked.get(k));
      expect(missing).toEqual([]);
    };
    const reader = await openEtcdStore({ endpoints: survivors, prefix });
    await check(reader);
    await reader.write([{ type: "put", key: "after", value: enc.encode("2 of 3") }]);
    await reader.close();

    await cluster.restart(victim);
    const rejoined = await openEtcdStore({ endpoints: [cluster.endpoints[victim]!], prefix });
    await check(rejoined);
    expect(dec.decode((await rejoined.get("after"))!)).toBe("2 of 3");
    await rejoined.close();
  }, 60_000);

  it("an etcd without quorum is UNAVAILABLE naming etcd, never INTERNAL, and no key in the message", async () => {
    const single = await startEtcd();
    try {
      const store = await openEtcdStore({ endpoints: single.endpoints, prefix: "q/", retryMs: 1500 });
      await single.kill(0);
      const error = await store.write([{ type: "put", key: `secret-key-${CANARY}`, value: enc.encode(CANARY) }]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VeilError);
      expect((error as VeilError).kind).toBe("unavailable");
      expect((error as VeilError).message).toMatch(/^store: etcd is unreachable or has no leader/);
      expect((error as VeilError).message).not.toContain(CANARY);
      await store.close();
      const refused = await openEtcdStore({ endpoints: single.endpoints, prefix: "q/", retryMs: 1000 }).catch((e: unknown) => e);
      expect((refused as VeilError).kind).toBe("unavailable");
      expect((refused as VeilError).message).toContain(single.endpoints[0]!);
    } finally {
      await single.stop();
    }
  }, 30_000);

  it("a watch says reset (false) when etcd goes away and reset (true) when it is back, then changes flow again", async () => {
    const single = await startEtcd();
    try {
      const store = await openEtcdStore({ endpoints: single.endpoints, prefix: "watch/", retryMs: 20_000 });
      const resets: boolean[] = [];
      const seen: string[] = [];
      const unwatch = store.watch("tok\0", { onChange: (c) => seen.push(c.key), onReset: (live) => resets.push(live) });
      await sleep(200);
      await store.write([{ type: "put", key: "tok\0one", value: enc.encode("1") }]);
      await until(() => seen.length === 1);
      await single.kill(0);
      await until(() => resets.includes(false));
      await single.restart(0);
      await until(() => resets.at(-1) === true, 40_000);
      await store.write([{ type: "put", key: "tok\0two", value: enc.encode("2") }]);
      await until(() => seen.includes("tok\0two"));
      expect(resets).toEqual([false, true]);
      unwatch();
      await store.close();
    } finally {
      await single.stop();
    }
  }, 60_000);

  it("a holder SIGKILLed: its lock and its ephemeral key are released within the lease TTL", async () => {
    const prefix = `lease${randomBytes(4).toString("hex")}/`;
    const holder = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./support/etcd-holder.ts", import.meta.url)), cluster.endpoints.join(","), prefix], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on("data", (d: Buffer) => d.toString().includes("holding") && resolve());
        holder.once("exit", (code) => reject(new Error(`holder exited ${code}`)));
      });
      const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix });
      expect(dec.decode((await store.get("srv\0holder"))!)).toBe(String(holder.pid));
      let acquired = false;
      const waiting = store.withLock("rotation", async () => {
        acquired = true;
      });
      await sleep(500);
      expect(acquired).toBe(false);
      const killedAt = Date.now();
      holder.kill("SIGKILL");
      await waiting;
      expect(Date.now() - killedAt).toBeLessThan(8000);
      expect(await store.get("srv\0holder")).toBeUndefined();
      await store.close();
    } finally {
      holder.kill("SIGKILL");
    }
  }, 30_000);

  it("prefixes keep deployments apart on one cluster", async () => {
    const a = await openEtcdStore({ endpoints: cluster.endpoints, prefix: `a${randomBytes(3).toString("hex")}/` });
    const b = await openEtcdStore({ endpoints: cluster.endpoints, prefix: `b${randomBytes(3).toString("hex")}/` });
    await a.write([{ type: "put", key: "sys\0keyring", value: enc.encode("a's") }]);
    expect(await b.get("sys\0keyring")).toBeUndefined();
    const inB: string[] = [];
    for await (const [k] of b.scan({})) inB.push(k);
    expect(inB).toEqual([]);
    await a.close();
    await b.close();
  });
});

describe.skipIf(etcdMissing !== undefined)(`veil serve --store etcd${etcdSkipNote}`, () => {
  let cluster: EtcdCluster;
  const dirs: { cleanup: () => void }[] = [];
  const servers: VeilServer[] = [];
  beforeAll(async () => {
    cluster = await startEtcd({ members: 3 });
  }, 60_000);
  afterAll(async () => {
    for (const s of servers) await s.close({ drainMs: 1000 }).catch(() => {});
    await cluster?.stop();
    for (const d of dirs) d.cleanup();
  });

  /** A server on its own data dir (another machine), on the cluster under `prefix`. */
  const start = async (prefix: string, env: Record<string, string> = { VEIL_MASTER_KEY: TEST_MASTER_KEY }) => {
    const dir = tempDir();
    dirs.push(dir);
    const flags = ["--port", "0", "--data-dir", dir.path, "--store", "etcd", "--etcd-endpoints", cluster.endpoints.join(","), "--etcd-prefix", prefix];
    const server = await startServer(parseServerConfig(flags, env), { logger: createLogger(() => {}), env });
    servers.push(server);
    return { server, dataDir: dir.path };
  };

  it("a secret set over the API survives a restart on another data dir; only the first server writes admin.token", async () => {
    const prefix = `e2e${randomBytes(4).toString("hex")}/`;
    const first = await start(prefix);
    const token = first.server.app.operatorToken!;
    expect(token).toBeDefined();
    expect(existsSync(join(first.dataDir, "admin.token"))).toBe(true);
    const client = await createVeilClient({ baseUrl: first.server.url, token });
    await client.secrets.setSecrets({ secrets: [{ name: "DB_PASSWORD", text: CANARY }] });
    await first.server.close({ drainMs: 1000 });

    const second = await start(prefix);
    expect(second.server.app.operatorToken).toBeUndefined();
    expect(existsSync(join(second.dataDir, "admin.token"))).toBe(false);
    const again = await createVeilClient({ baseUrl: second.server.url, token });
    expect((await again.secrets.getSecret({ name: "DB_PASSWORD" })).text).toBe(CANARY);
    await expectCode(createVeilClient({ baseUrl: second.server.url, token: "veil_bogus" }).then((c) => c.secrets.listSecrets({})), Code.Unauthenticated);

    // veil backup works on etcd (one revision), and restores into a LevelDB data dir that serves the same secret.
    const chunks: Uint8Array[] = [];
    for await (const res of again.backup.backup({})) chunks.push(res.data);
    const backup = Buffer.concat(chunks);
    expect(backup.subarray(0, 12).toString()).toBe("veil-backup\n");
    expect(backup.includes(CANARY)).toBe(false);
    const work = tempDir();
    dirs.push(work);
    writeFileSync(join(work.path, "etcd.backup"), backup);
    await restoreBackup({ file: join(work.path, "etcd.backup"), dataDir: join(work.path, "leveldb") });
    const env = { VEIL_MASTER_KEY: TEST_MASTER_KEY };
    const local = await startServer(parseServerConfig(["--port", "0", "--data-dir", join(work.path, "leveldb")], env), { logger: createLogger(() => {}), env });
    servers.push(local);
    const fromLevel = await createVeilClient({ baseUrl: local.url, token });
    expect((await fromLevel.secrets.getSecret({ name: "DB_PASSWORD" })).text).toBe(CANARY);
  }, 60_000);

  it("a wrong master key is refused at start; no master key at all is refused before touching etcd", async () => {
    const prefix = `key${randomBytes(4).toString("hex")}/`;
    await start(prefix);
    const wrong = await start(prefix, { VEIL_MASTER_KEY: Buffer.alloc(32, 9).toString("base64") }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(VeilError);
    expect((wrong as VeilError).kind).toBe("failed_precondition");
    expect((wrong as VeilError).message).toMatch(/master key does not match/);
    const none = await start(prefix, {}).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(ConfigError);
    expect((none as Error).message).toMatch(/--store etcd needs the master key every server shares: set VEIL_MASTER_KEY or --master-key-file/);
  }, 60_000);

  it("two servers starting at once on an empty store: one keyring, exactly one operator token, both serve the same secrets", async () => {
    const prefix = `race${randomBytes(4).toString("hex")}/`;
    const [a, b] = await Promise.all([start(prefix), start(prefix)]);
    const tokens = [a.server.app.operatorToken, b.server.app.operatorToken].filter((t) => t !== undefined);
    expect(tokens).toHaveLength(1);
    const viaA = await createVeilClient({ baseUrl: a.server.url, token: tokens[0]! });
    const viaB = await createVeilClient({ baseUrl: b.server.url, token: tokens[0]! });
    await viaA.secrets.setSecrets({ secrets: [{ name: "SHARED", text: CANARY }] });
    expect((await viaB.secrets.getSecret({ name: "SHARED" })).text).toBe(CANARY);
    const operators = (await viaB.tokens.listTokens({})).tokens.filter((t) => t.operator);
    expect(operators).toHaveLength(1);
  }, 60_000);
});

describe("--store flags", () => {
  const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => () => parseServerConfig(argv, env);
  it("etcd flags need --store etcd, which needs endpoints; the password is never a flag", () => {
    expect(parse(["--etcd-endpoints", "http://127.0.0.1:2379"])).toThrow(/--etcd-endpoints \(or VEIL_ETCD_ENDPOINTS\): only with --store etcd/);
    expect(parse([], { VEIL_ETCD_PASSWORD: "x" })).toThrow(/VEIL_ETCD_PASSWORD: only with --store etcd/);
    expect(parse(["--store", "etcd"])).toThrow(/--store etcd needs --etcd-endpoints/);
    expect(parse(["--store", "sqlite"])).toThrow(/--store \(or VEIL_STORE\): must be leveldb or etcd/);
    expect(parse(["--store", "etcd", "--etcd-endpoints", "127.0.0.1:2379"])).toThrow(/--etcd-endpoints .*http:\/\/ or https:\/\//);
    expect(parse(["--store", "etcd", "--etcd-endpoints", "http://a:2379", "--etcd-username", "veil"])).toThrow(/--etcd-username needs its password in VEIL_ETCD_PASSWORD or --etcd-password-file/);
    expect(parse(["--store", "etcd", "--etcd-endpoints", "http://a:2379", "--etcd-cert-file", "c.pem"])).toThrow(/give both or neither/);
    expect(parse(["--store", "etcd", "--etcd-endpoints", "http://a:2379", "--etcd-password", "x"])).toThrow(/Unknown option '--etcd-password'/);
    const config = parseServerConfig(["--store", "etcd", "--etcd-endpoints", "http://a:2379, https://b:2379", "--etcd-username", "veil"], { VEIL_ETCD_PASSWORD: "pw" });
    expect(config.etcd).toMatchObject({ endpoints: ["http://a:2379", "https://b:2379"], prefix: "veil/", username: "veil", maxTxnOps: 128, maxRequestBytes: 1572864 });
    expect(JSON.stringify(config)).not.toContain("pw");
    expect(parseServerConfig([]).store).toBe("leveldb");
  });
});

describe.skipIf(etcdMissing !== undefined)(`etcd with TLS and with auth${etcdSkipNote}`, () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it("mutual TLS: a client certificate from the CA connects; without one the start is refused, naming etcd", async () => {
    const ca = await testCa(dir.path, "etcd");
    const server = await ca.server();
    const client = await ca.client("veil");
    const cluster = await startEtcd({ tls: { certFile: server.certFile, keyFile: server.keyFile, clientCaFile: ca.caFile } });
    try {
      const tls = { ca: readFileSync(ca.caFile), cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) };
      const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: "tls/", tls });
      await store.write([{ type: "put", key: "k", value: enc.encode("over tls") }]);
      expect(dec.decode((await store.get("k"))!)).toBe("over tls");
      await store.close();
      const refused = await openEtcdStore({ endpoints: cluster.endpoints, prefix: "tls/", tls: { ca: tls.ca }, retryMs: 1000 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(VeilError);
      expect((refused as VeilError).message).toMatch(/^store: etcd/);
      // The server's flags read the same files.
      const flags = ["--store", "etcd", "--etcd-endpoints", cluster.endpoints[0]!, "--etcd-prefix", "tlsapp/", "--etcd-ca-file", ca.caFile, "--etcd-cert-file", client.certFile, "--etcd-key-file", client.keyFile];
      const env = { VEIL_MASTER_KEY: TEST_MASTER_KEY };
      const data = tempDir();
      const veil = await startServer(parseServerConfig(["--port", "0", "--data-dir", data.path, ...flags], env), { logger: createLogger(() => {}), env });
      expect(veil.app.operatorToken).toBeDefined();
      await veil.close({ drainMs: 500 });
      data.cleanup();
    } finally {
      await cluster.stop();
    }
  }, 60_000);

  it("etcd auth: the right user and password work; a wrong password or a prefix outside the user's role refuses the start with FAILED_PRECONDITION", async () => {
    const cluster = await startEtcd();
    try {
      const root = new Etcd3({ hosts: cluster.endpoints });
      await root.role("root").create();
      await (await root.user("root").create("root-pw")).addRole("root");
      const role = await root.role("veil").create();
      await role.grant({ permission: "Readwrite", range: root.range({ prefix: "veil/" }) });
      await (await root.user("veil").create("veil-pw")).addRole("veil");
      await root.auth.authEnable({});
      root.close();

      const wrong = await openEtcdStore({ endpoints: cluster.endpoints, auth: { username: "veil", password: `nope-${CANARY}` } }).catch((e: unknown) => e);
      expect((wrong as VeilError).kind).toBe("failed_precondition");
      expect((wrong as VeilError).message).toMatch(/^store: etcd refused the credentials/);
      expect((wrong as VeilError).message).not.toContain(CANARY);
      const outside = await openEtcdStore({ endpoints: cluster.endpoints, prefix: "other/", auth: { username: "veil", password: "veil-pw" } }).catch((e: unknown) => e);
      expect((outside as VeilError).kind).toBe("failed_precondition");
      expect((outside as VeilError).message).toMatch(/^store: etcd denied access/);

      // Through the server's flags: the password from --etcd-password-file.
      const data = tempDir();
      writeFileSync(join(data.path, "etcd-password"), "veil-pw\n", { mode: 0o600 });
      const flags = ["--store", "etcd", "--etcd-endpoints", cluster.endpoints[0]!, "--etcd-username", "veil", "--etcd-password-file", join(data.path, "etcd-password")];
      const env = { VEIL_MASTER_KEY: TEST_MASTER_KEY };
      const veil = await startServer(parseServerConfig(["--port", "0", "--data-dir", join(data.path, "d"), ...flags], env), { logger: createLogger(() => {}), env });
      expect(veil.app.operatorToken).toBeDefined();
      await veil.close({ drainMs: 500 });
      const badEnv = { VEIL_MASTER_KEY: TEST_MASTER_KEY, VEIL_ETCD_PASSWORD: "wrong" };
      const badFlags = ["--store", "etcd", "--etcd-endpoints", cluster.endpoints[0]!, "--etcd-username", "veil"];
      const bad = await startServer(parseServerConfig(["--port", "0", "--data-dir", join(data.path, "e"), ...badFlags], badEnv), { logger: createLogger(() => {}), env: badEnv }).catch(
        (e: unknown) => e,
      );
      expect((bad as VeilError).kind).toBe("failed_precondition");
      data.cleanup();
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});
