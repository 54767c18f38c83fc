// Child-process reference server of the gap bench: bare @grpc/grpc-js, a no-op Health/Check and BenchService.Stream from memory.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

/** Messages the parent sends. */
export type ToGrpcJsServer = { type: "cpu" } | { type: "close" };
/** Messages this child sends back. */
export type FromGrpcJsServer = { type: "ready"; port: number } | { type: "cpu"; usage: NodeJS.CpuUsage } | { type: "failed"; message: string };

const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));
/** The .proto files of the two services, loaded at run time as any grpc-js user would. */
export function loadGapProtos() {
  const definition = protoLoader.loadSync(["grpc/health/v1/health.proto", "veil/bench/v1/bench.proto", "veil/v1/secret.proto", "veil/v1/conversation.proto"], {
    includeDirs: [protoDir],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    veil: { bench: { v1: { BenchService: grpc.ServiceClientConstructor } }; v1: Record<string, grpc.ServiceClientConstructor> };
  };
}

/** Options of a server that does nothing but answer: what grpc-js itself costs. */
const MAX = 64 * 1024 * 1024;

const send = (message: FromGrpcJsServer) => process.send?.(message);
const [line = "x"] = process.argv.slice(2);

if (process.send !== undefined) {
  const protos = loadGapProtos();
  const server = new grpc.Server({ "grpc.max_receive_message_length": MAX, "grpc.max_send_message_length": MAX });
  server.addService(protos.grpc.health.v1.Health.service, {
    check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, { status: "SERVING" }),
  });
  server.addService(protos.veil.bench.v1.BenchService.service, {
    // The same messages Veil's BenchService.Stream sends: 64 KiB outputs from one buffer in memory.
    stream: (call: grpc.ServerWritableStream<{ total_bytes: string; chunk_bytes: number }, unknown>) => {
      const total = Number(call.request.total_bytes);
      const chunkBytes = call.request.chunk_bytes;
      const text = Buffer.from(`${line}\n`.repeat(Math.ceil(chunkBytes / (line.length + 1)))).subarray(0, chunkBytes);
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          const data = total - sent >= chunkBytes ? text : text.subarray(0, total - sent);
          sent += data.length;
          if (!call.write({ event: { output: { command_id: "cmd_1", stream: "STDOUT", data } } })) {
            call.once("drain", pump);
            return;
          }
        }
        call.end();
      };
      pump();
    },
  });
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error !== null) {
      send({ type: "failed", message: error.message });
      process.exit(1);
    }
    send({ type: "ready", port });
  });
  process.on("message", (message: ToGrpcJsServer) => {
    if (message.type === "cpu") send({ type: "cpu", usage: process.cpuUsage() });
    else server.tryShutdown(() => process.exit(0));
  });
  process.on("disconnect", () => process.exit(0));
}
