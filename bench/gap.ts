// The framework-gap bench (issue 14): Veil's unary and streaming paths as same-run ratios against bare grpc-js, one independent grpc-js client for all.
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { createVeilClient } from "../client/index.js";
import type { FromConversationServer, ToConversationServer } from "./conversation-server.js";
import { waitForChildMessage } from "./lib/child-message.js";
import { type FromGrpcJsServer, loadGapProtos, type ToGrpcJsServer } from "./lib/grpcjs-server.js";
import { type LoadResult, type Phase, runInterleaved } from "./lib/load.js";
import { atLeast, type BenchRow, type BenchTable, formatTable } from "./lib/table.js";

/** Knobs; the defaults are what bench/README.md's tables used. */
export interface GapBenchOptions {
  /** Unary: rounds of each phase, alternating (default 5), and their length (default 1 s). */
  rounds?: number;
  roundMs?: number;
  /** Streaming: bytes per run (default 64 MiB) and runs of each kind, alternating (default 4). */
  streamBytes?: number;
  streamRounds?: number;
  progress?: (line: string) => void;
  /** Run only the unary or only the streaming phases (e.g. to profile one path); default both. */
  part?: "unary" | "stream";
  /** Serve unary gRPC through Connect's adapter alone (the code before the lean path), for a before/after pair. */
  connectOnly?: boolean;
  /** Streaming: only the ceiling and the `yes | head` conversation (e.g. to profile that pair); the other rows read NaN. */
  conversationOnly?: boolean;
  /**
   * Streaming: another checkout (e.g. the code before a change) whose bench/conversation-server.ts runs as a
   * second Veil server; its ceiling and conversation alternate with this one's, for a same-run before/after.
   */
  compareWith?: string;
  /** Run only the unary phases and streaming kinds whose name contains this (e.g. "Veil GetSecret", or "logs" for the dense pair), to profile one alone; the others are not run and get no row. */
  only?: string;
}

/** The issue's targets. */
export const GAP_TARGETS = { noop: 0.8, getSecret: 0.6, conversation: 0.9, ceiling: 0.8, dense: 0.9 } as const;

const MiB = 1024 * 1024;
const CONCURRENCY = 32;
const CHUNK_BYTES = 64 * 1024;
const LOG_LINE = "2026-11-25T10:00:00Z INFO request served path=/api/v1/items status=200";
const OUTPUT_LIMIT_BYTES = 1024 * 1024 * 1024;
const GET_NAME = "BENCH_GET";
export const DENSE_SECRETS = 100;
/** One secret every this many bytes of the dense logs. */
export const DENSE_EVERY = 80;

type Child<From> = { pid: number; send(m: unknown): void; waitFor<T extends string>(type: T): Promise<Extract<From, { type: T }>>; close(): Promise<void> };

/** Forks a bench child (tsx loader and --cpu-prof carry over) and waits for its "ready". */
async function forkChild<From extends { type: string }>(module: string, args: string[]) {
  const execArgv = process.execArgv.some((a) => a.includes("tsx")) ? process.execArgv : [...process.execArgv, "--import", "tsx"];
  const child = fork(fileURLToPath(new URL(module, import.meta.url)), args, { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const handle: Child<From> = {
    pid: child.pid ?? 0,
    send: (m) => child.send(m as object),
    waitFor: (type) => waitForChildMessage(child, type as never, module) as never,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.send({ type: "close" });
      await exited;
    },
  };
  const ready = await handle.waitFor("ready").catch((error: unknown) => {
    child.kill();
    throw error;
  });
  return { handle, ready: ready as Extract<From, { type: "ready" }> };
}

async function cpuOf(child: Child<{ type: "cpu"; usage: NodeJS.CpuUsage }>): Promise<number> {
  const reply = child.waitFor("cpu");
  child.send({ type: "cpu" } satisfies ToGrpcJsServer & ToConversationServer);
  const { usage } = await reply;
  return usage.user + usage.system;
}

type Unary = (method: string, request: unknown, options?: grpc.CallOptions) => Promise<unknown>;
type Streamer = (method: string, request: unknown, onMessage: (m: Record<string, unknown>) => void) => Promise<void>;

/** A grpc-js client of one service at `port`, the bearer token in metadata on every call (grpc-js ignores it). */
function grpcJs(ctor: grpc.ServiceClientConstructor, port: number, token: string) {
  const client = new ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": 64 * MiB });
  const md = () => {
    const m = new grpc.Metadata();
    m.set("authorization", `Bearer ${token}`);
    return m;
  };
  const raw = client as unknown as Record<string, (...a: unknown[]) => unknown>;
  const unary: Unary = (method, request, options = {}) =>
    new Promise((resolve, reject) => raw[method]!.call(client, request, md(), options, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
  const stream: Streamer = (method, request, onMessage) =>
    new Promise((resolve, reject) => {
      const call = raw[method]!.call(client, request, md()) as grpc.ClientReadableStream<Record<string, unknown>>;
      call.on("data", onMessage);
      call.on("error", reject);
      call.on("end", () => resolve());
    });
  return { unary, stream, close: () => client.close() };
}

/** The deadline every call of the deadline rows sets (grpc-js's `deadline` option): real clients almost always set one. */
const DEADLINE_MS = 30_000;
type DeadlineResults = Record<"grpc-js no-op, deadline" | "Veil no-op, deadline" | "Veil GetSecret, deadline", LoadResult>;

/** The unary phases again with a client deadline on every call (grpc-timeout on the wire), grpc-js's own no-op the reference. */
function deadlinePhases(ref: Unary, health: Unary, secrets: Unary) {
  const deadline = () => ({ deadline: Date.now() + DEADLINE_MS });
  return {
    "grpc-js no-op, deadline": { op: () => ref("Check", {}, deadline()) },
    "Veil no-op, deadline": { op: () => health("Check", {}, deadline()) },
    "Veil GetSecret, deadline": { op: () => secrets("GetSecret", { name: GET_NAME }, deadline()) },
  };
}

/** The deadline rows: each Veil call against grpc-js's no-op with the same deadline, under the same targets. */
function deadlineRows(unary: DeadlineResults): BenchRow[] {
  const ref = unary["grpc-js no-op, deadline"];
  const row = (what: string, r: LoadResult, target?: number): BenchRow => ({
    what,
    perSecond: r.perSecond,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    ratio: r.perSecond / ref.perSecond,
    ...(target !== undefined ? atLeast(r.perSecond / ref.perSecond, target, `>= ${target} of grpc-js`) : {}),
  });
  return [
    row(`grpc-js no-op, client deadline ${DEADLINE_MS / 1000} s: the reference`, ref),
    row(`Veil no-op, client deadline ${DEADLINE_MS / 1000} s`, unary["Veil no-op, deadline"], GAP_TARGETS.noop),
    row(`Veil GetSecret, client deadline ${DEADLINE_MS / 1000} s`, unary["Veil GetSecret, deadline"], GAP_TARGETS.getSecret),
  ];
}

/** Log lines of ~80 bytes each holding one of `secrets` (or, for the clean twin, a same-length non-secret). */
export function denseLogs(secrets: readonly string[], size: number, clean: boolean): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const s = secrets[i % secrets.length]!;
    const value = clean ? "z".repeat(s.length) : s;
    const head = `2026-11-25T10:00:${String(i % 60).padStart(2, "0")}Z INFO auth ok key=`;
    const line = `${head}${value} n=${i}`.padEnd(DENSE_EVERY - 1, ".");
    lines.push(line);
    length += line.length + 1;
  }
  return Buffer.from(`${lines.join("\n")}\n`).subarray(0, size);
}

/** Runs the section and returns its table. */
export async function runGapBench(options: GapBenchOptions = {}): Promise<BenchTable> {
  const rounds = options.rounds ?? 5;
  const roundMs = options.roundMs ?? 1000;
  const streamBytes = options.streamBytes ?? 64 * MiB;
  const streamRounds = options.streamRounds ?? 4;
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const started = performance.now();
  const scratch = mkdtempSync(join(tmpdir(), "veil-bench-gap-"));
  const children: Child<never>[] = [];
  try {
    const ref = await forkChild<FromGrpcJsServer>("./lib/grpcjs-server.ts", [LOG_LINE]);
    children.push(ref.handle as Child<never>);
    const veil = await forkChild<FromConversationServer>("./conversation-server.ts", ["off", String(OUTPUT_LIMIT_BYTES), LOG_LINE, options.connectOnly === true ? "connect" : "lean"]);
    children.push(veil.handle as Child<never>);
    const token = veil.ready.token;
    const veilPort = Number(new URL(veil.ready.url).port);
    progress(`gap: servers up: grpc-js in pid ${ref.handle.pid}, Veil in pid ${veil.handle.pid}`);
    const other =
      options.compareWith === undefined
        ? undefined
        : await forkChild<FromConversationServer>(pathToFileURL(join(options.compareWith, "bench/conversation-server.ts")).href, ["off", String(OUTPUT_LIMIT_BYTES), LOG_LINE, "lean"]);
    if (other !== undefined) {
      children.push(other.handle as Child<never>);
      progress(`gap: the other checkout's Veil in pid ${other.handle.pid}`);
    }

    const dense = Array.from({ length: DENSE_SECRETS }, (_, i) => `sk-${i}-${randomBytes(14).toString("hex")}`);
    const names = dense.map((_, i) => `DENSE_${i}`);
    const typed = await createVeilClient({ baseUrl: veil.ready.url, token, protocol: "grpc" });
    await typed.secrets.setSecrets({ secrets: [{ name: GET_NAME, text: `v-${randomBytes(16).toString("hex")}` }, ...dense.map((text, i) => ({ name: names[i]!, text }))] });
    const fileBytes = 4 * MiB;
    // Commands run as the server's unprivileged user: the files must be readable by it.
    chmodSync(scratch, 0o755);
    writeFileSync(join(scratch, "dense.log"), denseLogs(dense, fileBytes, false), { mode: 0o644 });
    writeFileSync(join(scratch, "clean.log"), denseLogs(dense, fileBytes, true), { mode: 0o644 });

    const protos = loadGapProtos();
    const refHealth = grpcJs(protos.grpc.health.v1.Health, ref.ready.port, token);
    const veilHealth = grpcJs(protos.grpc.health.v1.Health, veilPort, token);
    const secrets = grpcJs(protos.veil.v1.SecretService!, veilPort, token);
    const refBench = grpcJs(protos.veil.bench.v1.BenchService, ref.ready.port, token);
    const veilBench = grpcJs(protos.veil.bench.v1.BenchService, veilPort, token);
    const conv = grpcJs(protos.veil.v1.ConversationService!, veilPort, token);
    const otherPort = other === undefined ? 0 : Number(new URL(other.ready.url).port);
    const otherBench = other === undefined ? undefined : grpcJs(protos.veil.bench.v1.BenchService, otherPort, other.ready.token);
    const otherConv = other === undefined ? undefined : grpcJs(protos.veil.v1.ConversationService!, otherPort, other.ready.token);
    if (other !== undefined) {
      const typedOther = await createVeilClient({ baseUrl: other.ready.url, token: other.ready.token, protocol: "grpc" });
      await typedOther.secrets.setSecrets({ secrets: [{ name: GET_NAME, text: `v-${randomBytes(16).toString("hex")}` }, ...dense.map((text, i) => ({ name: names[i]!, text }))] });
    }

    progress(`gap: unary, ${CONCURRENCY} in flight, ${rounds} rounds of ${roundMs} ms each, alternating ...`);
    const cpu: Record<string, { server: number; client: number; calls: number }> = {};
    const serverOf = (name: string) => (name.startsWith("grpc-js") ? ref.handle : name.startsWith("other") ? other!.handle : veil.handle) as Child<never>;
    const otherHealth = other === undefined ? undefined : grpcJs(protos.grpc.health.v1.Health, otherPort, other.ready.token);
    const otherSecrets = other === undefined ? undefined : grpcJs(protos.veil.v1.SecretService!, otherPort, other.ready.token);
    const unary = await runSelected(
      options.part === "stream" ? () => false : (name) => options.only === undefined || name.includes(options.only),
      {
        "grpc-js no-op": { op: () => refHealth.unary("Check", {}) },
        "Veil no-op": { op: () => veilHealth.unary("Check", {}) },
        "Veil GetSecret": { op: () => secrets.unary("GetSecret", { name: GET_NAME }) },
        ...deadlinePhases(refHealth.unary, veilHealth.unary, secrets.unary),
        // --compare: the other checkout's server in the same rounds, a same-run before/after.
        ...(otherHealth !== undefined && otherSecrets !== undefined
          ? {
              "other checkout: no-op": { op: () => otherHealth.unary("Check", {}) },
              "other checkout: GetSecret": { op: () => otherSecrets.unary("GetSecret", { name: GET_NAME }) },
            }
          : ({} as Record<"other checkout: no-op" | "other checkout: GetSecret", Phase>)),
      },
      {
        concurrency: CONCURRENCY,
        rounds,
        roundMs,
        warmupMs: 1000,
        around: async (name, run) => {
          const s0 = await cpuOf(serverOf(name));
          const c0 = process.cpuUsage();
          const result = await run();
          const c = process.cpuUsage(c0);
          const s = (await cpuOf(serverOf(name))) - s0;
          cpu[name] ??= { server: 0, client: 0, calls: 0 };
          const sum = cpu[name];
          sum.server += s;
          sum.client += c.user + c.system;
          sum.calls += result.requests;
          return result;
        },
      },
    );

    progress(`gap: streaming, ${streamBytes / MiB} MiB per run, ${streamRounds} runs of each kind, alternating ...`);
    const outputBytes = (m: Record<string, unknown>) => {
      // BenchService wraps the event (StreamResponse.event); StartConversation sends it bare (`event` is then the oneof's case name).
      const event = typeof m.event === "object" && m.event !== null ? (m.event as Record<string, unknown>) : m;
      const out = event.output as { data?: Buffer } | undefined;
      return out?.data?.length ?? 0;
    };
    // Output messages the client received: how finely each kind splits the same bytes.
    const counter = { messages: 0 };
    const benchRun = (client: typeof refBench) => async (total: number) => {
      let bytes = 0;
      await client.stream("Stream", { total_bytes: String(total), chunk_bytes: CHUNK_BYTES }, (m) => {
        bytes += outputBytes(m);
        counter.messages++;
      });
      if (bytes !== total) throw new Error(`stream sent ${bytes} of ${total} bytes`);
      return total;
    };
    const convRun = (command: (total: number) => string, declare: readonly string[], exact: boolean, client = conv) => async (total: number) => {
      let bytes = 0;
      let head = "";
      let exited: { exit_code?: number; truncated?: boolean } | undefined;
      await client.stream("StartConversation", { secrets: declare, commands: [command(total)], end_when_done: true }, (m) => {
        bytes += outputBytes(m);
        if (outputBytes(m) > 0) counter.messages++;
        if (head.length < 300 && outputBytes(m) > 0) head += String((m.output as { data: Buffer }).data).slice(0, 300);
        if (m.command_exited !== undefined) exited = m.command_exited as typeof exited;
      });
      // Masked output is shorter or longer than what was printed; the rate counts what the command printed.
      if (exited === undefined || (exited.exit_code ?? 0) !== 0 || exited.truncated === true || (exact && bytes !== total)) {
        throw new Error(`conversation streamed ${bytes} of ${total} bytes (exit ${exited?.exit_code}, truncated ${exited?.truncated}): ${head}`);
      }
      return total;
    };
    const cats = (file: string) => (total: number) => `set -o pipefail; for i in $(seq ${Math.ceil(total / fileBytes)}); do cat '${join(scratch, file)}'; done | head -c ${total}`;
    const kinds: Record<string, (total: number) => Promise<number>> = {
      "grpc-js stream": benchRun(refBench),
      "Veil stream from memory": benchRun(veilBench),
      "Veil conversation": convRun((total) => `yes '${LOG_LINE}' | head -c ${total}`, [names[0]!], true),
      "conversation, clean logs": convRun(cats("clean.log"), names, true),
      "conversation, secret-dense logs": convRun(cats("dense.log"), names, false),
    };
    if (otherBench !== undefined && otherConv !== undefined) {
      kinds["other checkout: stream from memory"] = benchRun(otherBench);
      kinds["other checkout: conversation"] = convRun((total) => `yes '${LOG_LINE}' | head -c ${total}`, [names[0]!], true, otherConv);
      kinds["other checkout: clean logs"] = convRun(cats("clean.log"), names, true, otherConv);
      kinds["other checkout: secret-dense logs"] = convRun(cats("dense.log"), names, false, otherConv);
    }
    if (options.conversationOnly === true) {
      for (const k of ["grpc-js stream", "conversation, clean logs", "conversation, secret-dense logs", "other checkout: clean logs", "other checkout: secret-dense logs"]) delete kinds[k];
    }
    if (options.only !== undefined) for (const k of Object.keys(kinds)) if (!k.includes(options.only)) delete kinds[k];
    const streams = await alternateRuns(
      kinds,
      streamBytes,
      options.part === "unary" ? 0 : streamRounds,
      async (name) => cpuOf((name.startsWith("grpc-js") ? ref.handle : name.startsWith("other") ? other!.handle : veil.handle) as Child<never>),
      counter,
    );
    // What a conversation costs the server besides its bytes (shell spawn, workspace mount, kill sweep, clean-up): one byte, 20 times.
    const fixed = { conversations: 0, serverUs: 0 };
    if (options.part !== "unary") {
      const tiny = convRun(() => "printf x", [names[0]!], false);
      await tiny(1);
      const c0 = await cpuOf(veil.handle as Child<never>);
      for (; fixed.conversations < 20; fixed.conversations++) await tiny(1);
      fixed.serverUs = (await cpuOf(veil.handle as Child<never>)) - c0;
    }
    const NOT_RUN = { mbPerSec: Number.NaN, runs: [] as number[], serverUsPerMiB: 0, clientUsPerMiB: 0, messagesPerMiB: 0 };
    for (const k of ["grpc-js stream", "Veil stream from memory", "Veil conversation", "conversation, clean logs", "conversation, secret-dense logs"]) streams[k] ??= NOT_RUN;
    for (const c of [refHealth, veilHealth, secrets, refBench, veilBench, conv, otherBench, otherConv, otherHealth, otherSecrets]) c?.close();

    const r = (a: LoadResult, b: LoadResult) => a.perSecond / b.perSecond;
    const s = (a: string, b: string) => (streams[a]?.mbPerSec ?? Number.NaN) / (streams[b]?.mbPerSec ?? Number.NaN);
    const noop = r(unary["Veil no-op"], unary["grpc-js no-op"]);
    const get = r(unary["Veil GetSecret"], unary["grpc-js no-op"]);
    const ceiling = s("Veil stream from memory", "grpc-js stream");
    const conversation = s("Veil conversation", "Veil stream from memory");
    const denseRatio = s("conversation, secret-dense logs", "conversation, clean logs");
    const u = (name: keyof typeof unary) => ({ perSecond: unary[name].perSecond, p50Ms: unary[name].p50Ms, p99Ms: unary[name].p99Ms });
    const rows: BenchRow[] = [
      { what: "grpc-js no-op server, Health/Check: the reference", ...u("grpc-js no-op"), ratio: 1 },
      { what: "Veil no-op (Health/Check)", ...u("Veil no-op"), ratio: noop, ...atLeast(noop, GAP_TARGETS.noop, `>= ${GAP_TARGETS.noop} of grpc-js`) },
      { what: "Veil GetSecret", ...u("Veil GetSecret"), ratio: get, ...atLeast(get, GAP_TARGETS.getSecret, `>= ${GAP_TARGETS.getSecret} of grpc-js`) },
      ...deadlineRows(unary),
      { what: `grpc-js stream of ${streamBytes / MiB} MiB from memory, 64 KiB chunks [MB/s]`, perSecond: streams["grpc-js stream"]?.mbPerSec ?? Number.NaN, ratio: 1 },
      { what: "Veil stream from memory (the ceiling) [MB/s]", perSecond: streams["Veil stream from memory"]?.mbPerSec ?? Number.NaN, ratio: ceiling, ...atLeast(ceiling, GAP_TARGETS.ceiling, `>= ${GAP_TARGETS.ceiling} of grpc-js`) },
      { what: "Veil conversation, yes | head, 1 secret masked [MB/s]", perSecond: streams["Veil conversation"]?.mbPerSec ?? Number.NaN, ratio: conversation, ...atLeast(conversation, GAP_TARGETS.conversation, `>= ${GAP_TARGETS.conversation} of ceiling`) },
      { what: `conversation, logs without secrets, ${DENSE_SECRETS} declared [MB/s]`, perSecond: streams["conversation, clean logs"]?.mbPerSec ?? Number.NaN, ratio: 1 },
      { what: `conversation, one of ${DENSE_SECRETS} secrets every ~${DENSE_EVERY} bytes [MB/s]`, perSecond: streams["conversation, secret-dense logs"]?.mbPerSec ?? Number.NaN, ratio: denseRatio, ...atLeast(denseRatio, GAP_TARGETS.dense, `>= ${GAP_TARGETS.dense} of clean`) },
    ];
    if (other !== undefined) {
      const before = s("other checkout: conversation", "other checkout: stream from memory");
      const otherDense = s("other checkout: secret-dense logs", "other checkout: clean logs");
      for (const [what, target] of [
        ["other checkout: no-op", GAP_TARGETS.noop],
        ["other checkout: GetSecret", GAP_TARGETS.getSecret],
      ] as const) {
        const result = unary[what];
        const ratio = r(result, unary["grpc-js no-op"]);
        rows.push({ what, perSecond: result.perSecond, p50Ms: result.p50Ms, p99Ms: result.p99Ms, ratio, ...atLeast(ratio, target, `>= ${target} of grpc-js`) });
      }
      rows.push(
        { what: "other checkout: stream from memory [MB/s]", perSecond: streams["other checkout: stream from memory"]?.mbPerSec ?? Number.NaN, ratio: s("other checkout: stream from memory", "Veil stream from memory") },
        { what: "other checkout: conversation [MB/s]", perSecond: streams["other checkout: conversation"]?.mbPerSec ?? Number.NaN, ratio: before, ...atLeast(before, GAP_TARGETS.conversation, `>= ${GAP_TARGETS.conversation} of its ceiling`) },
        { what: "other checkout: secret-dense logs [MB/s]", perSecond: streams["other checkout: secret-dense logs"]?.mbPerSec ?? Number.NaN, ratio: otherDense, ...atLeast(otherDense, GAP_TARGETS.dense, `>= ${GAP_TARGETS.dense} of its clean`) },
      );
    }
    // Phases and kinds this run left out (--unary, --stream, --only) have no rate: no row.
    const shown = rows.filter((row) => !Number.isNaN(row.perSecond));
    const ran = Object.entries(streams).filter(([, v]) => v.runs.length > 0);
    const perCall = Object.entries(cpu).map(([name, c]) => `${name} ${Math.round(c.server / c.calls)} + ${Math.round(c.client / c.calls)}`);
    return {
      title: "Framework gap: Veil vs bare grpc-js, one grpc-js client",
      rows: shown,
      notes: [
        `One independent @grpc/grpc-js client (proto-loader, no generated code) for every row, one HTTP/2 connection per server; servers in child processes: bare grpc-js (\`bench/lib/grpcjs-server.ts\`) and Veil (\`bench/conversation-server.ts\`: the app's routes, interceptors and listener plus BenchService, ${veil.ready.from === "dist" ? "the compiled dist/ that npm start runs" : "from the sources through tsx: run npm run build first for the compiled server users run"}), sandbox off.`,
        ...(perCall.length === 0 ? [] : [`Unary: ${CONCURRENCY} in flight, ${rounds} alternating rounds of ${roundMs} ms after 1 s warm-up each. CPU µs per call, server + client: ${perCall.join(", ")}.`]),
        ...(ran.length === 0 ? [] : [`Streaming: ${streamRounds} runs of ${streamBytes / MiB} MiB per kind, alternating (order reversed every other round); per run MB/s: ${ran.map(([k, v]) => `${k} ${v.runs.map((x) => x.toFixed(0)).join(", ")}`).join("; ")}. Server CPU µs per MiB: ${ran.map(([k, v]) => `${k} ${v.serverUsPerMiB}`).join(", ")}; the client's: ${ran.map(([k, v]) => `${k} ${v.clientUsPerMiB}`).join(", ")}. A one-byte conversation (start, \`printf x\`, end): ${Math.round(fixed.serverUs / fixed.conversations / 1000)} ms of server CPU each, ${Math.round(fixed.serverUs / fixed.conversations / (streamBytes / MiB))} µs per MiB spread over one ${streamBytes / MiB} MiB run. Output messages per MiB: ${ran.map(([k, v]) => `${k} ${v.messagesPerMiB.toFixed(1)}`).join(", ")}.`]),
        ...(streams["conversation, secret-dense logs"]!.runs.length === 0 ? [] : [`Dense pair: the same ${DENSE_SECRETS} secrets declared in both, \`cat\` of a ${fileBytes / MiB} MiB file of ${DENSE_EVERY}-byte log lines, one secret value in every line vs the same lines with a same-length non-secret; rate = bytes printed / time.`]),
        `Load average at the end: ${(await import("node:os")).loadavg().map((l) => l.toFixed(1)).join(", ")} (ratios only: rounds alternate so load hits every phase alike). The section took ${Math.round((performance.now() - started) / 1000)} s.`,
      ],
    };
  } finally {
    await Promise.all(children.map((c) => c.close()));
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Alternates the kinds run by run and sums each kind's bytes, time, server and client CPU, and output messages (`counter`, bumped by the runs). */
async function alternateRuns(
  kinds: Record<string, (total: number) => Promise<number>>,
  total: number,
  rounds: number,
  serverCpu: (name: string) => Promise<number>,
  counter: { messages: number },
): Promise<Record<string, { mbPerSec: number; runs: number[]; serverUsPerMiB: number; clientUsPerMiB: number; messagesPerMiB: number }>> {
  const names = Object.keys(kinds);
  const sums = new Map(names.map((k) => [k, { bytes: 0, ms: 0, cpu: 0, client: 0, messages: 0, runs: [] as number[] }]));
  if (rounds === 0) return Object.fromEntries(names.map((k) => [k, { mbPerSec: Number.NaN, runs: [] as number[], serverUsPerMiB: 0, clientUsPerMiB: 0, messagesPerMiB: 0 }]));
  for (const name of names) await kinds[name]!(Math.min(total, 16 * MiB));
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) {
      const c0 = await serverCpu(name);
      const m0 = counter.messages;
      const t0 = performance.now();
      const client0 = process.cpuUsage();
      const bytes = await kinds[name]!(total);
      const ms = performance.now() - t0;
      const client = process.cpuUsage(client0);
      const sum = sums.get(name)!;
      sum.client += client.user + client.system;
      sum.messages += counter.messages - m0;
      sum.cpu += (await serverCpu(name)) - c0;
      sum.bytes += bytes;
      sum.ms += ms;
      sum.runs.push(bytes / 1e6 / (ms / 1000));
    }
  }
  return Object.fromEntries(
    names.map((k) => {
      const s = sums.get(k)!;
      return [k, { mbPerSec: s.bytes / 1e6 / (s.ms / 1000), runs: s.runs, serverUsPerMiB: Math.round(s.cpu / (s.bytes / MiB)), clientUsPerMiB: Math.round(s.client / (s.bytes / MiB)), messagesPerMiB: s.messages / (s.bytes / MiB) }];
    }),
  );
}

/** A unary phase left out (--stream, --only): NaN rates, so its rows are left out of the table. */
const NOT_MEASURED: LoadResult = { requests: 0, elapsedMs: 0, perSecond: Number.NaN, p50Ms: Number.NaN, p99Ms: Number.NaN, latencies: [] };

/** runInterleaved over the phases `wanted` selects; the others answer NOT_MEASURED, and none of their rounds are spent. */
async function runSelected<K extends string>(wanted: (name: K) => boolean, phases: Record<K, Phase>, options: Parameters<typeof runInterleaved>[1]): Promise<Record<K, LoadResult>> {
  const names = Object.keys(phases) as K[];
  const chosen = names.filter(wanted);
  const measured = chosen.length === 0 ? ({} as Partial<Record<K, LoadResult>>) : await runInterleaved(Object.fromEntries(chosen.map((n) => [n, phases[n]])) as Record<K, Phase>, options);
  return Object.fromEntries(names.map((n) => [n, measured[n] ?? NOT_MEASURED])) as Record<K, LoadResult>;
}

// Run directly: print this section's table alone.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const quick = process.argv.includes("--quick");
  const part = process.argv.includes("--unary") ? "unary" : process.argv.includes("--stream") ? "stream" : undefined;
  const sizes = quick ? { rounds: 3, roundMs: 700, streamBytes: 32 * MiB, streamRounds: 2 } : {};
  const flagValue = (flag: string) => {
    const at = process.argv.indexOf(flag);
    return at > 0 ? process.argv[at + 1] : undefined;
  };
  const compare = flagValue("--compare");
  const only = flagValue("--only");
  const options: GapBenchOptions = {
    ...sizes,
    ...(part !== undefined ? { part } : {}),
    connectOnly: process.argv.includes("--connect-only"),
    conversationOnly: process.argv.includes("--conversation"),
    ...(compare !== undefined ? { compareWith: compare } : {}),
    ...(only !== undefined ? { only } : {}),
  };
  console.log(formatTable(await runGapBench(options)));
}
