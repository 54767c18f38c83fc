// The store bench: GetSecret and SetSecrets over gRPC on --store etcd (1 and 3 members) against LevelDB, in one interleaved run.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createVeilClient, type VeilClient } from "../client/index.js";
import { parseServerConfig } from "../server/config.js";
import { createLogger } from "../server/log.js";
import { startServer, type VeilServer } from "../server/server.js";
import { type EtcdCluster, etcdMissing, startEtcd } from "../test/support/etcd.js";
import { type InterleaveOptions, runInterleaved } from "./lib/load.js";
import { type BenchRow, type BenchTable, formatTable } from "./lib/table.js";

const STORED = 1000;
const MASTER_KEY = randomBytes(32).toString("base64");
const storedName = (i: number) => `S${String(i).padStart(6, "0")}`;
const secretValue = () => `sk-bench-${randomBytes(24).toString("hex")}`;
const pick = (n: number) => Math.floor(Math.random() * n);

interface Target {
  server: VeilServer;
  client: VeilClient;
  close(): Promise<void>;
}

/** A Veil server in this process on a fresh data dir, with the given store flags, seeded with STORED secrets. */
async function startTarget(flags: string[]): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), "veil-bench-store-"));
  const env = { VEIL_MASTER_KEY: MASTER_KEY };
  const config = parseServerConfig(["--host", "127.0.0.1", "--port", "0", "--data-dir", dir, ...flags], env);
  const server = await startServer(config, { logger: createLogger(() => {}), env });
  const client = await createVeilClient({ baseUrl: server.url, token: server.app.operatorToken!, protocol: "grpc" });
  // Batches of 20: within etcd's default 128 operations per transaction (3 per secret with its audit event).
  for (let from = 0; from < STORED; from += 20) {
    await client.secrets.setSecrets({ secrets: Array.from({ length: 20 }, (_, k) => ({ name: storedName(from + k), text: secretValue() })) });
  }
  return {
    server,
    client,
    async close() {
      await server.close({ drainMs: 1000 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the comparison and returns the table (needs /usr/bin/etcd). */
export async function runStoreBench(options: { concurrency?: number; rounds?: number; roundMs?: number; progress?: (line: string) => void } = {}): Promise<BenchTable> {
  if (etcdMissing !== undefined) throw new Error(etcdMissing);
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const concurrency = options.concurrency ?? 32;
  const interleave: InterleaveOptions = { concurrency, rounds: options.rounds ?? 5, roundMs: options.roundMs ?? 1000, warmupMs: 1000 };
  const clusters: EtcdCluster[] = [];
  const targets: Target[] = [];
  try {
    progress("store: starting etcd (1 member, and 3 members) ...");
    const [one, three] = await Promise.all([startEtcd({ members: 1 }), startEtcd({ members: 3 })]);
    clusters.push(one, three);
    progress(`store: starting three servers, ${STORED} secrets each ...`);
    const level = await startTarget([]);
    targets.push(level);
    const etcd1 = await startTarget(["--store", "etcd", "--etcd-endpoints", one.endpoints.join(",")]);
    targets.push(etcd1);
    const etcd3 = await startTarget(["--store", "etcd", "--etcd-endpoints", three.endpoints.join(",")]);
    targets.push(etcd3);
    const get = (t: Target) => ({ op: () => t.client.secrets.getSecret({ name: storedName(pick(STORED)) }) });
    const set = (t: Target, tag: string) => ({ op: (_w: number, seq: number) => t.client.secrets.setSecrets({ secrets: [{ name: `W${tag}${seq}`, text: secretValue() }] }) });
    progress("store: GetSecret and SetSecrets on LevelDB, etcd x1, etcd x3, interleaved ...");
    const r = await runInterleaved(
      {
        "get leveldb": get(level),
        "get etcd1": get(etcd1),
        "get etcd3": get(etcd3),
        "set leveldb": set(level, "L"),
        "set etcd1": set(etcd1, "A"),
        "set etcd3": set(etcd3, "B"),
      },
      interleave,
    );
    const row = (what: string, name: keyof typeof r, base: keyof typeof r): BenchRow => ({
      what,
      perSecond: r[name].perSecond,
      p50Ms: r[name].p50Ms,
      p99Ms: r[name].p99Ms,
      ratio: r[name].perSecond / r[base].perSecond,
    });
    return {
      title: `Store: etcd against LevelDB (gRPC, concurrency ${concurrency})`,
      rows: [
        row("GetSecret, LevelDB: the reference", "get leveldb", "get leveldb"),
        row("GetSecret, etcd, 1 member", "get etcd1", "get leveldb"),
        row("GetSecret, etcd, 3 members", "get etcd3", "get leveldb"),
        row("SetSecrets, 1 new secret per call, LevelDB: the reference", "set leveldb", "set leveldb"),
        row("SetSecrets, 1 new secret per call, etcd, 1 member", "set etcd1", "set leveldb"),
        row("SetSecrets, 1 new secret per call, etcd, 3 members", "set etcd3", "set leveldb"),
      ],
      notes: [
        `Three Veil servers in the bench's process (so each pays the same client cost), one per store, each with ${STORED} secrets; etcd 3.4 members on loopback, each its own process with its own temp data dir (fsync on). One gRPC connection per server, ${concurrency} calls in flight; the six phases alternate in ${interleave.rounds} rounds of ${interleave.roundMs} ms. Ratio = rate / the LevelDB rate of the same call.`,
        "GetSecret on etcd is two linearizable reads in turn (the record, then its value), each a read-only Txn shared with every read of the same tick; SetSecrets reads the record, then writes one guarded Txn, grouped with every write queued meanwhile and acknowledged after etcd's quorum commit (each member fsyncs its log).",
      ],
    };
  } finally {
    for (const t of targets) await t.close().catch(() => {});
    for (const c of clusters) await c.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) console.log(formatTable(await runStoreBench()));
