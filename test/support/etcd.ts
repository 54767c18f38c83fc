// Real etcd members for tests: one or three on free loopback ports, each with its own temp dir; killed and restarted at will.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ETCD_BIN = "/usr/bin/etcd";

/** Why etcd tests skip here, or undefined when they run. */
export const etcdMissing: string | undefined = existsSync(ETCD_BIN) ? undefined : "etcd not installed: apt-get install etcd-server";

/** Appended to a test's name when it is skipped. */
export const etcdSkipNote = etcdMissing !== undefined ? ` (skipped: ${etcdMissing})` : "";

interface Member {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  process: ChildProcess | undefined;
  log: string[];
}

/** A running cluster. */
export interface EtcdCluster {
  /** Client URLs of every member, for --etcd-endpoints. */
  endpoints: string[];
  /** SIGKILLs member i (no clean shutdown) and waits until it is gone. */
  kill(i: number): Promise<void>;
  /** Starts member i again on its data dir and waits until it reports healthy. */
  restart(i: number): Promise<void>;
  /** The index of the member that leads the cluster now (asked of the live members). */
  leader(): Promise<number>;
  /** What member i printed, for a failing test's message. */
  log(i: number): string;
  /** Kills every member and removes the data dirs. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
// A failed or interrupted test run leaves no etcd behind.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** A port free right now on loopback (the member binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function launch(member: Member, cluster: string, token: string, state: "new" | "existing") {
  const child = spawn(
    ETCD_BIN,
    [
      `--name=${member.name}`,
      `--data-dir=${member.dataDir}`,
      `--listen-client-urls=${member.clientUrl}`,
      `--advertise-client-urls=${member.clientUrl}`,
      `--listen-peer-urls=${member.peerUrl}`,
      `--initial-advertise-peer-urls=${member.peerUrl}`,
      `--initial-cluster=${cluster}`,
      `--initial-cluster-token=${token}`,
      `--initial-cluster-state=${state}`,
      "--log-level=warn",
      "--logger=zap",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  running.add(child);
  const keep = (chunk: Buffer) => {
    member.log.push(chunk.toString());
    if (member.log.length > 200) member.log.shift();
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.once("exit", () => running.delete(child));
  member.process = child;
}

/** Waits until the member's /health says true (it has joined a cluster with a leader). */
async function waitHealthy(member: Member, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (member.process?.exitCode !== null && member.process?.exitCode !== undefined) {
      throw new Error(`etcd member ${member.name} exited (${member.process.exitCode}):\n${member.log.join("").slice(-2000)}`);
    }
    try {
      const res = await fetch(`${member.clientUrl}/health`);
      if (res.ok && ((await res.json()) as { health?: string }).health === "true") return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`etcd member ${member.name} not healthy after ${timeoutMs} ms:\n${member.log.join("").slice(-2000)}`);
}

function exited(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Starts `members` etcd members (1 or 3) forming one cluster, and waits until every one is healthy. */
export async function startEtcd(options: { members?: number } = {}): Promise<EtcdCluster> {
  if (etcdMissing !== undefined) throw new Error(etcdMissing);
  const count = options.members ?? 1;
  const root = mkdtempSync(join(tmpdir(), "veil-etcd-"));
  const members: Member[] = [];
  for (let i = 0; i < count; i++) {
    members.push({
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: join(root, `m${i}`),
      process: undefined,
      log: [],
    });
  }
  const cluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
  const token = `veil-test-${process.pid}-${Date.now()}`;
  for (const m of members) launch(m, cluster, token, "new");
  const stop = async () => {
    for (const m of members) m.process?.kill("SIGKILL");
    await Promise.all(members.map((m) => exited(m.process)));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await Promise.all(members.map((m) => waitHealthy(m)));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    endpoints: members.map((m) => m.clientUrl),
    async kill(i) {
      const m = members[i]!;
      m.process?.kill("SIGKILL");
      await exited(m.process);
    },
    async restart(i) {
      const m = members[i]!;
      launch(m, cluster, token, "existing");
      await waitHealthy(m);
    },
    async leader() {
      for (const m of members) {
        if (m.process?.exitCode !== null || m.process.signalCode !== null) continue;
        try {
          const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: "POST", body: "{}" });
          const status = (await res.json()) as { leader?: string; header?: { member_id?: string } };
          if (status.leader === undefined || status.leader === "0") continue;
          for (const [i, other] of members.entries()) {
            const own = (await (await fetch(`${other.clientUrl}/v3/maintenance/status`, { method: "POST", body: "{}" }).catch(() => undefined))?.json().catch(() => undefined)) as
              | { header?: { member_id?: string } }
              | undefined;
            if (own?.header?.member_id === status.leader) return i;
          }
        } catch {
          // This member is not answering; ask the next.
        }
      }
      throw new Error("no etcd member reports a leader");
    },
    log: (i) => members[i]!.log.join(""),
    stop,
  };
}
