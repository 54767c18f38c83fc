// The scale bench: GetSecret throughput through 1, 2 and 3 Veil servers on one 3-member etcd cluster, same client, same run.
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import { createVeilClient, type VeilClient } from "../client/index.js";
import { type ClusterProcess, spawnEtcdServer } from "../test/support/cluster.js";
import { startEtcd } from "../test/support/etcd.js";
import { tempDir } from "../test/support/temp-dir.js";
import { type InterleaveOptions, runInterleaved } from "./lib/load.js";
import { type BenchTable, formatTable } from "./lib/table.js";

/** Knobs of the scale bench; the defaults are what the README's table used. */
export interface ScaleBenchOptions {
  /** Requests in flight in every phase, spread evenly over its servers (divisible by 1, 2 and 3). */
  concurrency?: number;
  rounds?: number;
  roundMs?: number;
  warmupMs?: number;
  /** Secrets stored (GetSecret reads a random one). */
  stored?: number;
  progress?: (line: string) => void;
}

const storedName = (i: number) => `S${String(i).padStart(5, "0")}`;
const pick = (n: number) => Math.floor(Math.random() * n);
const TICKS_PER_SECOND = 100;
const LOAD_BATCH = 40;

/** CPU seconds a process has used (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** The etcd members this process started (children named etcd), found in /proc. */
function etcdPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (comm === "etcd" && ppid === process.pid) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** Runs the phases and returns the table. */
export async function runScaleBench(options: ScaleBenchOptions = {}): Promise<BenchTable> {
  const concurrency = options.concurrency ?? 48;
  const stored = options.stored ?? 1000;
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const interleave: InterleaveOptions = { concurrency, rounds: options.rounds ?? 5, roundMs: options.roundMs ?? 2000, warmupMs: options.warmupMs ?? 2000 };
  progress("scale: starting a 3-member etcd cluster and 3 Veil servers on it ...");
  const etcd = await startEtcd({ members: 3 });
  const dirs: ReturnType<typeof tempDir>[] = [];
  const servers: ClusterProcess[] = [];
  try {
    for (const id of ["s1", "s2", "s3"]) {
      const dir = tempDir("veil-scale-");
      dirs.push(dir);
      servers.push(await spawnEtcdServer(id, etcd.endpoints, dir.path, ["--log-level", "warn"]));
    }
    const token = servers[0]!.token!;
    const clients: VeilClient[] = await Promise.all(servers.map((s) => createVeilClient({ baseUrl: s.url, token, protocol: "grpc" })));
    progress(`scale: storing ${stored} secrets ...`);
    // Batches within one etcd transaction (128 ops by default; a new secret is 3 ops).
    for (let from = 0; from < stored; from += LOAD_BATCH) {
      await clients[0]!.secrets.setSecrets({ secrets: Array.from({ length: Math.min(LOAD_BATCH, stored - from) }, (_, k) => ({ name: storedName(from + k), text: `sk-scale-${from + k}` })) });
    }
    // Each worker keeps to one server: k servers get concurrency / k requests in flight each.
    const through = (k: number) => ({ op: (worker: number) => clients[worker % k]!.secrets.getSecret({ name: storedName(pick(stored)) }) });
    const cpu = new Map<string, { veil: number; etcd: number; client: number; requests: number }>();
    const members = etcdPids();
    const total = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    const veilPids = servers.map((s) => s.proc.pid!);
    const around: NonNullable<InterleaveOptions["around"]> = async (name, run) => {
      const veilBefore = total(veilPids);
      const etcdBefore = total(members);
      const clientBefore = process.cpuUsage();
      const result = await run();
      const clientUsed = process.cpuUsage(clientBefore);
      const sum = cpu.get(name) ?? { veil: 0, etcd: 0, client: 0, requests: 0 };
      sum.veil += total(veilPids) - veilBefore;
      sum.etcd += total(members) - etcdBefore;
      sum.client += (clientUsed.user + clientUsed.system) / 1e6;
      sum.requests += result.requests;
      cpu.set(name, sum);
      return result;
    };
    progress("scale: GetSecret through 1, 2 and 3 servers, interleaved ...");
    const results = await runInterleaved({ "1 server": through(1), "2 servers": through(2), "3 servers": through(3) }, { ...interleave, around });
    const one = results["1 server"].perSecond;
    const us = (seconds: number, requests: number) => Math.round((seconds * 1e6) / requests);
    const perCall = [...cpu].map(([name, u]) => `${name}: Veil ${us(u.veil, u.requests)} + etcd ${us(u.etcd, u.requests)} + client ${us(u.client, u.requests)}`).join("; ");
    return {
      title: `Scale-out: GetSecret through 1, 2 and 3 Veil servers on one 3-member etcd cluster (concurrency ${concurrency})`,
      rows: (["1 server", "2 servers", "3 servers"] as const).map((name) => ({
        what: `GetSecret, ${name}`,
        perSecond: results[name].perSecond,
        p50Ms: results[name].p50Ms,
        p99Ms: results[name].p99Ms,
        ratio: results[name].perSecond / one,
      })),
      notes: [
        `Three \`veil serve --store etcd\` processes (ids s1-s3, each its own data dir, one master key) on three etcd 3.4 members on loopback, all on this machine; one bench process with one gRPC client transport (one HTTP/2 connection) per server and ${concurrency} requests in flight, spread evenly over the phase's servers. ${stored} secrets stored; each GetSecret reads a random one: two linearizable etcd reads (metadata, value) and one audit event written as an etcd transaction, quorum-committed, then decryption. Phases alternate in ${interleave.rounds} rounds of ${interleave.roundMs} ms after ${interleave.warmupMs} ms of warm-up each; ratio = rate / the 1-server rate.`,
        `CPU µs per call (Veil = the sum over the three server processes, etcd = over the ${members.length} members): ${perCall}. Load average at the end: ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores.`,
      ],
    };
  } finally {
    await Promise.all(servers.map((s) => s.kill9()));
    await etcd.stop();
    for (const d of dirs) d.cleanup();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  console.log(formatTable(await runScaleBench()));
}
