// Child-process server of the conversation bench: the app's routes plus the bench-only BenchService, wired as startServer does.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConnectRouter, Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { BenchService as BenchServiceType } from "../gen/veil/bench/v1/bench_pb.js";
import { loadVeilModules } from "./lib/veil-modules.js";

const veil = await loadVeilModules();
const { BenchService } = veil.benchPb;
const { Stream } = veil.conversationPb;
const { createApp } = veil.app;
const { parseServerConfig } = veil.config;
const { createLogger } = veil.log;
const { withCors } = veil.cors;
const { withSpecGrpcMessage } = veil.grpcMessage;
const { createGrpcLeanPath } = veil.grpcLean;
const { listen } = veil.listener;
const { withRequestId } = veil.requestId;
const { guardDecoding } = veil.decodeGuard;
const { LIMITS } = veil.schemas;

/** Messages the parent sends. */
export type ToConversationServer = { type: "cpu" } | { type: "close" };
/** Messages this child sends back. */
export type FromConversationServer =
  | { type: "ready"; url: string; token: string; from: "dist" | "sources" }
  | { type: "cpu"; usage: NodeJS.CpuUsage }
  | { type: "failed"; message: string };

/**
 * The transport ceiling: output events of `chunk_bytes` from one buffer in memory. No executor,
 * no masker, but the same router, interceptors, adapter options and listener as the app's RPCs.
 */
function benchService(line: string): ServiceImpl<typeof BenchServiceType> {
  return {
    async *stream(req) {
      const total = Number(req.totalBytes);
      const chunkBytes = req.chunkBytes;
      if (chunkBytes === 0 || chunkBytes > LIMITS.messageBytes) throw new ConnectError(`chunk_bytes: must be 1..${LIMITS.messageBytes}`, Code.InvalidArgument);
      const text = Buffer.from(`${line}\n`.repeat(Math.ceil(chunkBytes / (line.length + 1)))).subarray(0, chunkBytes);
      for (let sent = 0; sent < total; sent += chunkBytes) {
        const data = total - sent >= chunkBytes ? text : text.subarray(0, total - sent);
        yield { event: { event: { case: "output", value: { commandId: "cmd_1", stream: Stream.STDOUT, data } } } };
      }
    },
  };
}

const send = (message: FromConversationServer) => process.send?.(message);
// From the parent (argv, so this module exports only types and the parent never runs its top level):
// the sandbox mode, the output cap, and the line the ceiling repeats (the text the bench's command prints).
// Everything else is `veil serve` with its defaults.
// The fourth, "connect", serves unary gRPC through the adapter alone (no lean path), to compare the two.
const [sandbox = "off", outputLimitBytes = "", logLine = "", unaryPath = "lean"] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), "veil-bench-conv-"));
// A master key in the environment: the embedded default would write a key file and warn.
const env = { VEIL_MASTER_KEY: randomBytes(32).toString("base64") };
let closeServer: () => Promise<void> = async () => {};
try {
  const config = parseServerConfig(
    ["--host", "127.0.0.1", "--port", "0", "--data-dir", dir, "--sandbox", sandbox, "--output-limit-bytes", outputLimitBytes],
    env,
  );
  // Logs formatted then dropped, as in the other benches: the per-call cost stays the real one.
  const app = await createApp(config, { logger: createLogger(() => {}), env });
  const token = app.operatorToken;
  if (token === undefined) throw new Error(`fresh data dir ${dir} did not create an operator token`);
  // Not a Veil RPC: it needs a token (the app's own) and is neither validated nor audited.
  app.rules.set(BenchService.method.stream, { request: null, audit: null, public: false });
  const unary = createGrpcLeanPath({ interceptors: app.interceptors, readMaxBytes: LIMITS.messageBytes, encoders: veil.secretWire.HAND_ENCODERS });
  const routes = (router: ConnectRouter) => {
    app.routes(unary.record(router));
    router.service(BenchService, benchService(logLine));
    guardDecoding(router, { readMaxBytes: LIMITS.messageBytes, logger: createLogger(() => {}) });
    unary.seal(router);
  };
  // The options and wrappers of server/server.ts's startServer, so both RPCs share one transport path.
  const handler = connectNodeAdapter({ routes, interceptors: app.interceptors, readMaxBytes: LIMITS.messageBytes, acceptCompression: [] });
  const listener = await listen(withRequestId(withCors(withSpecGrpcMessage(handler))), { host: config.host, port: 0, ...(unaryPath === "connect" ? {} : { streams: unary.take }) });
  closeServer = async () => {
    app.serving = false;
    await app.conversations.closeAll();
    await listener.close({ drainMs: 1000 });
    await app.close();
  };
  send({ type: "ready", url: listener.url, token, from: veil.from });
} catch (error) {
  send({ type: "failed", message: (error as Error).stack ?? String(error) });
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
}

let closing = false;
const shutdown = async () => {
  if (closing) return;
  closing = true;
  await closeServer().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
  // Explicit exit: an idle HTTP/2 session or the IPC channel could keep the process alive; --cpu-prof still writes on exit.
  process.exit(0);
};
process.on("message", (message: ToConversationServer) => {
  if (message.type === "cpu") send({ type: "cpu", usage: process.cpuUsage() });
  else void shutdown();
});
// The parent died: do not linger holding a temp dir and shells.
process.on("disconnect", () => void shutdown());
