// Several real Veil servers in this process, each on its own loopback port, sharing one memory store as servers share etcd.
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createVeilClient, type VeilClient } from "../../client/index.js";
import { parseServerConfig } from "../../server/config.js";
import { createLogger } from "../../server/log.js";
import { startServer, type VeilServer } from "../../server/server.js";
import type { KvStore } from "../../server/store/kv.js";
import { openMemoryStore } from "../../server/store/memory-store.js";
import { TEST_MASTER_KEY } from "./app.js";
import { spawnServe } from "./child-server.js";
import { tempDir } from "./temp-dir.js";

/** One server of the cluster. */
export interface ClusterNode {
  server: VeilServer;
  url: string;
  id: string;
  logs: string[];
  /** A client of this server for `token`. */
  as(token: string): Promise<VeilClient>;
  /** Stops it (drained, deregistered); idempotent. */
  close(): Promise<void>;
}

/** Servers over one store, and the operator token the first one minted. */
export interface MemoryCluster {
  store: KvStore;
  nodes: ClusterNode[];
  token: string;
  /** Starts one more server on the same store. */
  add(extraFlags?: string[]): Promise<ClusterNode>;
  close(): Promise<void>;
}

/** Starts `count` servers (ids s1, s2, ...) over one memory store. */
export async function startMemoryCluster(count: number, extraFlags: string[] = []): Promise<MemoryCluster> {
  const store = openMemoryStore();
  const dirs: { cleanup(): void }[] = [];
  const nodes: ClusterNode[] = [];
  let token = "";
  const add = async (more: string[] = []): Promise<ClusterNode> => {
    const dir = tempDir("veil-cluster-");
    dirs.push(dir);
    const id = `s${nodes.length + 1}`;
    const env = { VEIL_MASTER_KEY: TEST_MASTER_KEY };
    const logs: string[] = [];
    const config = parseServerConfig(["--host", "127.0.0.1", "--port", "0", "--data-dir", dir.path, "--server-id", id, ...extraFlags, ...more], env);
    const server = await startServer(config, { logger: createLogger((line) => logs.push(line)), env, store }).catch((error: unknown) => {
      dir.cleanup();
      throw error;
    });
    if (server.app.operatorToken !== undefined) token = server.app.operatorToken;
    const node: ClusterNode = {
      server,
      url: server.url,
      id,
      logs,
      as: (t) => createVeilClient({ baseUrl: server.url, token: t, protocol: "grpc" }),
      close: () => server.close({ drainMs: 1000 }),
    };
    nodes.push(node);
    return node;
  };
  for (let i = 0; i < count; i++) await add();
  return {
    store,
    nodes,
    get token() {
      return token;
    },
    add,
    async close() {
      await Promise.all(nodes.map((n) => n.close()));
      await store.close();
      for (const d of dirs) d.cleanup();
    },
  };
}

/** A `veil serve` process of a cluster. */
export interface ClusterProcess {
  proc: ChildProcess;
  url: string;
  id: string;
  dataDir: string;
  /** The operator token, when this server was the first on its store (else undefined). */
  token: string | undefined;
  stderr(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait: no drain, no deregistration (its lease lapses instead). */
  kill9(): Promise<void>;
}

/** Starts `veil serve --store etcd` (id `id`, port 0, its own data dir) on the given etcd endpoints and waits until it listens. */
export async function spawnEtcdServer(id: string, endpoints: readonly string[], dataDir: string, extraArgs: string[] = []): Promise<ClusterProcess> {
  const args = ["serve", "--port", "0", "--data-dir", dataDir, "--store", "etcd", "--etcd-endpoints", endpoints.join(","), "--server-id", id, ...extraArgs];
  const server = await spawnServe(args, {}, { label: id, timeoutMs: 30_000 });
  const tokenFile = `${dataDir}/admin.token`;
  return {
    proc: server.proc,
    url: server.url,
    id,
    dataDir,
    token: existsSync(tokenFile) ? readFileSync(tokenFile, "utf8").trim() : undefined,
    stderr: server.stderr,
    stop: server.stop,
    kill9: server.kill9,
  };
}
