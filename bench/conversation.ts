// The conversation bench: command output streamed through StartConversation beside the transport ceiling, and time to first byte beside a bare spawn.
import { fork, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ClientHttp2Session } from "node:http2";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { createVeilClient, type VeilClient } from "../client/index.js";
import { BenchService } from "../gen/veil/bench/v1/bench_pb.js";
import { detectSandbox } from "../server/domain/executor.js";
import { BASH } from "../server/domain/executor/bash-path.js";
import { bubblewrapArgs } from "../server/domain/executor/sandbox.js";
import { writeIdentityFiles } from "../server/domain/executor/sandbox-fs.js";
import type { FromConversationServer, ToConversationServer } from "./conversation-server.js";
import { waitForChildMessage } from "./lib/child-message.js";
import { percentile, summarize } from "./lib/load.js";
import { type BenchRow, type BenchTable, formatTable } from "./lib/table.js";

/** Knobs of the conversation bench; the defaults are what the README's table used. */
export interface ConversationBenchOptions {
  /** Bytes each streaming run prints (default 256 MiB). */
  totalBytes?: number;
  /** Streaming runs of each kind, alternating (default 6: even, so each kind goes first equally often). */
  rounds?: number;
  /** Measured first-byte samples per phase, phases interleaved (default 30). */
  iterations?: number;
  /** Progress lines (stderr by default); the table is the return value. */
  progress?: (line: string) => void;
}

/** Targets from the issue. */
const TARGETS = {
  streamVsCeiling: 0.7,
  firstByteOverMs: 15,
} as const;

const MiB = 1024 * 1024;
/** What Node reads from a child's pipe at a time, so what the executor hands on per output event. */
const CHUNK_BYTES = 64 * 1024;
/** The text both streams carry: `yes` repeats it in the conversation, the ceiling from memory. */
const LOG_LINE = "2026-11-25T10:00:00Z INFO request served path=/api/v1/items status=200";
/** The config's maximum: the default 16 MiB cap would cut a 256 MiB run. */
const OUTPUT_LIMIT_BYTES = 1024 * 1024 * 1024;
const SECRET_NAME = "BENCH_API_KEY";
// Long and unlike the text: the masker has something to look for and never finds it.
const SECRET_VALUE = `sk-bench-${randomBytes(24).toString("hex")}`;
const WARMUP_BYTES = 64 * MiB;
/** Receive windows of the second client: far above one message, so flow control never waits on a round trip. */
const WIDE_WINDOW = 8 * MiB;
const WARMUP_ITERATIONS = 3;
const mb = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
const fixed = (n: number, digits = 1) => n.toFixed(digits);

/** A client of one server: the typed Veil client and the bench service over its transport. */
interface Caller {
  client: VeilClient;
  bench: Client<typeof BenchService>;
}

/** One child-process server of this bench and its default client. */
interface ConvServer extends Caller {
  pid: number;
  url: string;
  token: string;
  cpuUsage(): Promise<NodeJS.CpuUsage>;
  close(): Promise<void>;
}

/** Runs both measurements in one go and returns the table. */
export async function runConversationBench(options: ConversationBenchOptions = {}): Promise<BenchTable> {
  const totalBytes = options.totalBytes ?? 256 * MiB;
  const rounds = options.rounds ?? 6;
  const iterations = options.iterations ?? 30;
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const started = performance.now();

  const sandboxed = (await detectSandbox("required")).kind === "bubblewrap";
  const starting = await Promise.allSettled([startConvServer("off"), ...(sandboxed ? [startConvServer("auto")] : [])]);
  const servers = starting.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = starting.find((s) => s.status === "rejected");
  if (failed !== undefined) {
    // One server up and the other not: stop the one, or its IPC channel keeps this process alive.
    await Promise.all(servers.map((s) => s.close()));
    throw failed.reason;
  }
  const [plain, bwrapServer] = servers as [ConvServer, ConvServer | undefined];
  const scratch = mkdtempSync(join(tmpdir(), "veil-bench-bare-"));
  try {
    progress(`conversation: servers up: sandbox off in pid ${plain.pid}${bwrapServer ? `, bubblewrap in pid ${bwrapServer.pid}` : " (bubblewrap not usable here: no sandbox pair)"}`);
    for (const s of servers) await s.client.secrets.setSecrets({ secrets: [{ name: SECRET_NAME, text: SECRET_VALUE }] });

    progress(`conversation: ${fixed(totalBytes / MiB, 0)} MiB through StartConversation vs from memory, default and wide HTTP/2 windows, ${rounds} rounds each, alternating ...`);
    const wide = await wideWindowCaller(plain);
    const stream = await streamPhases(plain, totalBytes, rounds, {
      conversation: (total) => conversationRun(plain, total),
      ceiling: (total) => ceilingRun(plain, total),
      "conversation, wide windows": (total) => conversationRun(wide, total),
      "ceiling, wide windows": (total) => ceilingRun(wide, total),
    });
    const std = { conversation: stream.conversation, ceiling: stream.ceiling };
    const wideResult = { conversation: stream["conversation, wide windows"], ceiling: stream["ceiling, wide windows"] };

    progress(`conversation: first output byte, ${iterations} samples per phase, interleaved ...`);
    const latency = await latencyPhases({ plain, bwrap: bwrapServer, scratch, iterations });

    const size = `${fixed(totalBytes / MiB, 0)} MiB`;
    const ratio = std.conversation.mbPerSec / std.ceiling.mbPerSec;
    const wideRatio = wideResult.conversation.mbPerSec / wideResult.ceiling.mbPerSec;
    const rows: BenchRow[] = [
      { what: `gRPC stream of ${size} from memory, 64 KiB chunks: the ceiling [MB/s]`, perSecond: std.ceiling.mbPerSec, ratio: 1 },
      {
        what: `StartConversation, ${size} printed by a command, 1 secret masked [MB/s]`,
        perSecond: std.conversation.mbPerSec,
        ratio,
        target: `>= ${TARGETS.streamVsCeiling} of ceiling`,
        pass: ratio >= TARGETS.streamVsCeiling,
      },
      { what: `the ceiling, client with ${WIDE_WINDOW / MiB} MiB HTTP/2 receive windows [MB/s]`, perSecond: wideResult.ceiling.mbPerSec, ratio: 1 },
      { what: `StartConversation, the same client [MB/s]`, perSecond: wideResult.conversation.mbPerSec, ratio: wideRatio },
    ];
    for (const pair of latency.pairs) {
      const delta = pair.conversation.p50Ms - pair.bare.p50Ms;
      rows.push(
        { what: `bare spawn of ${pair.bareLabel} to first stdout byte`, perSecond: pair.bare.perSecond, p50Ms: pair.bare.p50Ms, p99Ms: pair.bare.p99Ms, ratio: 1 },
        {
          what: `StartConversation(echo hi) to first output byte, ${pair.label} (${delta >= 0 ? "+" : ""}${fixed(delta)} ms)`,
          perSecond: pair.conversation.perSecond,
          p50Ms: pair.conversation.p50Ms,
          p99Ms: pair.conversation.p99Ms,
          ratio: pair.conversation.p50Ms / pair.bare.p50Ms,
          target: `p50 <= bare + ${TARGETS.firstByteOverMs} ms`,
          pass: delta <= TARGETS.firstByteOverMs,
        },
      );
    }
    const elapsed = Math.round((performance.now() - started) / 1000);
    return {
      title: "Conversation: streaming and time to first byte",
      rows,
      notes: [
        `The rate column is MB/s (10^6 bytes/s) in the [MB/s] rows and samples per second one at a time in the latency rows; ratio = rate / the ceiling for streaming, p50 / the bare spawn's p50 for latency (the target is on the difference, shown in the row).`,
        `Servers: the app's routes plus the bench-only \`veil.bench.v1.BenchService\` on one \`connectNodeAdapter\` behind the server's own \`listen()\` (the options and wrappers of \`startServer\`), each in its own child process, fresh temp data dir, \`--output-limit-bytes ${OUTPUT_LIMIT_BYTES}\`. The typed client (Connect gRPC transport, one HTTP/2 connection) per server, one call at a time.`,
        `Streaming: \`yes '<${LOG_LINE.length}-byte log line>' | head -c ${totalBytes}\` in a conversation declaring 1 secret (${SECRET_VALUE.length} chars; the text never contains it) vs \`BenchService.Stream\` sending the same byte count as ConversationEvent outputs of ${CHUNK_BYTES / 1024} KiB from one buffer (no executor, no masker; wrapped in a StreamResponse, +3 bytes a message), both through the app's interceptors, sandbox off (bubblewrap is not on the pipe path: bash inherits the pipes). The four kinds alternate run by run (order reversed every other round), ${rounds} runs each after a ${WARMUP_BYTES / MiB} MiB warm-up of each; rate = total bytes / total time of the calls.`,
        `Wide windows: the typed client keeps Node's HTTP/2 defaults, a 64 KiB receive window per stream and per connection, so each 64 KiB message waits for the client's WINDOW_UPDATE and the ceiling is bound by that round trip, not by CPU. The second client (a second connection to the same server) raises both windows to ${WIDE_WINDOW / MiB} MiB (\`initialWindowSize\`, \`setLocalWindowSize\`): there the server's own work per byte decides. No target on that pair.`,
        `Streaming, per run, MB/s: ${Object.entries(stream).map(([kind, r]) => `${kind} ${r.runs.map((x) => fixed(x, 0)).join(", ")}`).join("; ")}. Output events the client got in the conversation: ${fixed(std.conversation.avgChunk / 1024)} KiB on average (the executor forwards each pipe read as it comes).`,
        `CPU µs per MiB, server + client process (the conversation's bash, yes and head not included): ${Object.entries(stream).map(([kind, r]) => `${kind} ${r.cpu}`).join(", ")}.`,
        `First byte: ${iterations} samples per phase after ${WARMUP_ITERATIONS} unmeasured ones, phases interleaved sample by sample (order reversed every other sample). StartConversation declares the same secret and \`end_when_done\`; timed from the call to the first output event (so it includes opening the conversation: secret resolve, a new shell and its start-up handshake, the audit record) and drained to the end before the next sample. The bare spawn is \`child_process.spawn\` in the bench process, timed to its first stdout byte and awaited to its exit.${bwrapServer ? ` The sandbox pair: a \`--sandbox auto\` server (bubblewrap) vs bwrap with \`bubblewrapArgs()\` of server/domain/executor/sandbox.ts running \`${BASH} -c 'echo hi'\`.` : ""}`,
        ...latency.pairs.map((p) => `${p.label}: p50 first byte ${fixed(p.conversation.p50Ms, 2)} ms vs bare ${fixed(p.bare.p50Ms, 2)} ms; p90 ${fixed(percentile(p.conversation.latencies, 0.9), 2)} vs ${fixed(percentile(p.bare.latencies, 0.9), 2)} ms.`),
        `The section took ${elapsed} s.`,
      ],
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await Promise.all(servers.map((s) => s.close()));
  }
}

/** Forks conversation-server.ts with a sandbox mode and connects a gRPC client to it. */
async function startConvServer(sandbox: "off" | "auto"): Promise<ConvServer> {
  // fork() reuses this process's execArgv, so `--import tsx` and `--cpu-prof` carry over.
  const execArgv = process.execArgv.some((a) => a.includes("tsx")) ? process.execArgv : [...process.execArgv, "--import", "tsx"];
  const child = fork(fileURLToPath(new URL("./conversation-server.ts", import.meta.url)), [sandbox, String(OUTPUT_LIMIT_BYTES), LOG_LINE], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ready = await waitForChildMessage<FromConversationServer, "ready">(child, "ready", "conversation bench server").catch(async (error: unknown) => {
    child.kill();
    throw error;
  });
  const client = await createVeilClient({ baseUrl: ready.url, token: ready.token, protocol: "grpc" });
  return {
    pid: child.pid ?? 0,
    url: ready.url,
    token: ready.token,
    client,
    bench: createClient(BenchService, client.transport),
    async cpuUsage() {
      const reply = waitForChildMessage<FromConversationServer, "cpu">(child, "cpu", "conversation bench server");
      child.send({ type: "cpu" } satisfies ToConversationServer);
      return (await reply).usage;
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.send({ type: "close" } satisfies ToConversationServer);
      await exited;
    },
  };
}


/**
 * Connect has no option for the connection-level window (Node only sets it on a live session),
 * so the session manager widens each new session as it hands out its first stream.
 */
class WideWindowSessions extends Http2SessionManager {
  private readonly widened = new WeakSet<ClientHttp2Session>();

  override async request(...args: Parameters<Http2SessionManager["request"]>) {
    const stream = await super.request(...args);
    const session = stream.session as ClientHttp2Session | undefined;
    if (session !== undefined && !this.widened.has(session)) {
      session.setLocalWindowSize(WIDE_WINDOW);
      this.widened.add(session);
    }
    return stream;
  }
}

/** A second client of `server`, on its own connection, with wide HTTP/2 receive windows. */
async function wideWindowCaller(server: ConvServer): Promise<Caller> {
  const client = await createVeilClient({
    baseUrl: server.url,
    token: server.token,
    protocol: "grpc",
    transport: ({ baseUrl, interceptors }) =>
      createGrpcTransport({
        baseUrl,
        interceptors,
        readMaxBytes: 64 * MiB,
        sessionManager: new WideWindowSessions(baseUrl, undefined, { settings: { initialWindowSize: WIDE_WINDOW } }),
      }),
  });
  return { client, bench: createClient(BenchService, client.transport) };
}

/** One streaming call: bytes received, how long it took, output events. */
interface StreamRun {
  bytes: number;
  ms: number;
  events: number;
}

/** Streams `total` bytes through a conversation: the end-to-end path, masker on. */
async function conversationRun(server: Caller, total: number): Promise<StreamRun> {
  const t0 = performance.now();
  let bytes = 0;
  let events = 0;
  let exited: { exitCode: number; truncated: boolean } | undefined;
  const call = server.client.startConversation({ secrets: [SECRET_NAME], commands: [`yes '${LOG_LINE}' | head -c ${total}`], endWhenDone: true });
  for await (const { event } of call) {
    if (event.case === "output") {
      bytes += event.value.data.length;
      events++;
    } else if (event.case === "commandExited") exited = event.value;
  }
  const ms = performance.now() - t0;
  // A short, cut or masked stream would make the rate a lie.
  if (exited === undefined || exited.truncated || bytes !== total) {
    throw new Error(`conversation streamed ${bytes} of ${total} bytes (exit ${exited?.exitCode}, truncated ${exited?.truncated})`);
  }
  return { bytes, ms, events };
}

/** Streams `total` bytes from the server's memory: the transport ceiling. */
async function ceilingRun(server: Caller, total: number): Promise<StreamRun> {
  const t0 = performance.now();
  let bytes = 0;
  let events = 0;
  for await (const { event } of server.bench.stream({ totalBytes: BigInt(total), chunkBytes: CHUNK_BYTES })) {
    if (event?.event.case === "output") {
      bytes += event.event.value.data.length;
      events++;
    }
  }
  const ms = performance.now() - t0;
  if (bytes !== total) throw new Error(`ceiling streamed ${bytes} of ${total} bytes`);
  return { bytes, ms, events };
}

/** Alternates the kinds' runs (server CPU read from `server`) and sums each kind's bytes, time and CPU. */
async function streamPhases<K extends string>(server: ConvServer, total: number, rounds: number, kinds: Record<K, (total: number) => Promise<StreamRun>>) {
  const names = Object.keys(kinds) as K[];
  const sums = new Map(names.map((k) => [k, { bytes: 0, ms: 0, events: 0, serverUs: 0, clientUs: 0, runs: [] as number[] }]));
  // Warm-up: JIT, the HTTP/2 connections and the first shell spawn are not what is measured.
  for (const kind of names) await kinds[kind](WARMUP_BYTES);
  for (let r = 0; r < rounds; r++) {
    // Reversing the order every other round keeps a drift in background load from favouring one kind.
    for (const kind of r % 2 === 0 ? names : [...names].reverse()) {
      const serverBefore = await server.cpuUsage();
      const clientBefore = process.cpuUsage();
      const run = await kinds[kind](total);
      const client = process.cpuUsage(clientBefore);
      const serverAfter = await server.cpuUsage();
      const sum = sums.get(kind)!;
      sum.bytes += run.bytes;
      sum.ms += run.ms;
      sum.events += run.events;
      sum.serverUs += serverAfter.user - serverBefore.user + serverAfter.system - serverBefore.system;
      sum.clientUs += client.user + client.system;
      sum.runs.push(mb(run.bytes, run.ms));
    }
  }
  const result = (kind: K) => {
    const s = sums.get(kind)!;
    const perMiB = (us: number) => Math.round(us / (s.bytes / MiB));
    return { mbPerSec: mb(s.bytes, s.ms), runs: s.runs, avgChunk: s.bytes / s.events, cpu: `${perMiB(s.serverUs)} + ${perMiB(s.clientUs)}` };
  };
  return Object.fromEntries(names.map((k) => [k, result(k)])) as Record<K, ReturnType<typeof result>>;
}

/** Time from StartConversation to its first output byte; the stream is then drained so the conversation is gone. */
async function conversationFirstByte(server: ConvServer, expectSandbox: string): Promise<number> {
  const t0 = performance.now();
  let first: number | undefined;
  for await (const { event } of server.client.startConversation({ secrets: [SECRET_NAME], commands: ["echo hi"], endWhenDone: true })) {
    if (event.case === "started" && event.value.sandbox !== expectSandbox) throw new Error(`conversation ran with sandbox "${event.value.sandbox}", expected "${expectSandbox}"`);
    if (event.case === "output" && event.value.data.length > 0) first ??= performance.now() - t0;
  }
  if (first === undefined) throw new Error("echo hi printed nothing through StartConversation");
  return first;
}

/** Time from spawn() to the child's first stdout byte; resolves once the child has exited. */
function bareFirstByte(file: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first: number | undefined;
    const child = spawn(file, args);
    child.stdout.once("data", () => {
      first = performance.now() - t0;
    });
    child.stdout.resume();
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0 || first === undefined) reject(new Error(`${file} exited ${code} ${first === undefined ? "without output" : ""}`));
      else resolve(first);
    });
  });
}

/** The first-byte pairs (plain, and bubblewrap when usable), sampled in interleaved order. */
async function latencyPhases(ctx: { plain: ConvServer; bwrap: ConvServer | undefined; scratch: string; iterations: number }) {
  const phases: { name: string; sample: () => Promise<number> }[] = [
    { name: "conv none", sample: () => conversationFirstByte(ctx.plain, "none") },
    { name: "bare bash", sample: () => bareFirstByte("bash", ["-c", "echo hi"]) },
  ];
  let bwrapLabel = "";
  if (ctx.bwrap !== undefined) {
    const status = await detectSandbox("required");
    if (status.kind !== "bubblewrap") throw new Error("bubblewrap stopped working");
    const bwrap = status.bwrap;
    // The server's own argv builder, with a one-shot `bash -c` after it, as its probe does.
    const identityDir = `${ctx.scratch}.identity`;
    writeIdentityFiles(identityDir, ctx.scratch);
    const args = [...bubblewrapArgs({ workspace: ctx.scratch, network: "none", identityDir, hidden: [] }), BASH, "-c", "echo hi"];
    bwrapLabel = `bwrap (${args.length} args) + bash -c 'echo hi'`;
    const server = ctx.bwrap;
    phases.push(
      { name: "conv bwrap", sample: () => conversationFirstByte(server, "bubblewrap") },
      { name: "bare bwrap", sample: () => bareFirstByte(bwrap, args) },
    );
  }
  const samples = new Map(phases.map((p) => [p.name, [] as number[]]));
  for (let i = 0; i < WARMUP_ITERATIONS + ctx.iterations; i++) {
    const order = i % 2 === 0 ? phases : [...phases].reverse();
    for (const phase of order) {
      const ms = await phase.sample();
      if (i >= WARMUP_ITERATIONS) samples.get(phase.name)!.push(ms);
    }
  }
  const result = (name: string) => {
    const latencies = samples.get(name)!;
    return summarize([{ latencies, elapsedMs: latencies.reduce((a, b) => a + b, 0) }]);
  };
  const pairs = [{ label: "no sandbox", bareLabel: "bash -c 'echo hi'", conversation: result("conv none"), bare: result("bare bash") }];
  if (ctx.bwrap !== undefined) pairs.push({ label: "bubblewrap", bareLabel: bwrapLabel, conversation: result("conv bwrap"), bare: result("bare bwrap") });
  return { pairs };
}

// Run directly: print this section's table alone.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  console.log(formatTable(await runConversationBench()));
}
