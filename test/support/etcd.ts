// Real etcd members for tests: one or three on free loopback ports, each with its own temp dir; killed and restarted at will.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
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

/**
 * `n` distinct ports free right now on loopback (the members bind them a moment later). All are held
 * until every one is chosen, so the kernel cannot hand the same port out twice.
 */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export interface EtcdTls {
  certFile: string;
  keyFile: string;
  clientCaFile: string;
}

function launch(member: Member, cluster: string, token: string, state: "new" | "existing", tls?: EtcdTls) {
  const tlsFlags = tls === undefined ? [] : [`--cert-file=${tls.certFile}`, `--key-file=${tls.keyFile}`, `--trusted-ca-file=${tls.clientCaFile}`, "--client-cert-auth"];
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
      ...tlsFlags,
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

/** Waits until the member's /health says true (it has joined a cluster with a leader); with TLS, until its port answers. */
async function waitHealthy(member: Member, timeoutMs = 30_000, tls?: EtcdTls) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (member.process?.exitCode !== null && member.process?.exitCode !== undefined) {
      throw new Error(`etcd member ${member.name} exited (${member.process.exitCode}):\n${member.log.join("").slice(-2000)}`);
    }
    try {
      if (tls !== undefined) {
        // /health would need a client certificate: a port that accepts connections will do (clients retry until a leader).
        if (await accepts(member.clientUrl)) return;
      } else {
        const res = await fetch(`${member.clientUrl}/health`);
        if (res.ok && ((await res.json()) as { health?: string }).health === "true") return;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`etcd member ${member.name} not healthy after ${timeoutMs} ms:\n${member.log.join("").slice(-2000)}`);
}

function accepts(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function exited(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Starts `members` etcd members (1 or 3) forming one cluster, and waits until every one is healthy.
 * A port taken by another test between choosing and binding it fails the start: it is tried again on other ports.
 */
export async function startEtcd(options: { members?: number; tls?: EtcdTls } = {}): Promise<EtcdCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEtcdOnce(options);
    } catch (error) {
      if (attempt >= 3 || !/address already in use/.test((error as Error).message)) throw error;
    }
  }
}

async function startEtcdOnce(options: { members?: number; tls?: EtcdTls }): Promise<EtcdCluster> {
  if (etcdMissing !== undefined) throw new Error(etcdMissing);
  const count = options.members ?? 1;
  const root = mkdtempSync(join(tmpdir(), "veil-etcd-"));
  const members: Member[] = [];
  const ports = await freePorts(2 * count);
  for (let i = 0; i < count; i++) {
    members.push({
      name: `m${i}`,
      clientUrl: `${options.tls !== undefined ? "https" : "http"}://127.0.0.1:${ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
      dataDir: join(root, `m${i}`),
      process: undefined,
      log: [],
    });
  }
  const cluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
  const token = `veil-test-${process.pid}-${Date.now()}`;
  for (const m of members) launch(m, cluster, token, "new", options.tls);
  const stop = async () => {
    for (const m of members) m.process?.kill("SIGKILL");
    await Promise.all(members.map((m) => exited(m.process)));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await Promise.all(members.map((m) => waitHealthy(m, 30_000, options.tls)));
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
      launch(m, cluster, token, "existing", options.tls);
      await waitHealthy(m, 30_000, options.tls);
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
