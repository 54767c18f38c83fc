// The server modules a bench child runs: the compiled dist/ (what `npm start` runs) when it is fresh, else the sources through tsx.
import { distIsFresh } from "../../bin/dist-fresh.mjs";

type Modules = {
  app: typeof import("../../server/app.js");
  config: typeof import("../../server/config.js");
  log: typeof import("../../server/log.js");
  cors: typeof import("../../server/net/cors.js");
  grpcMessage: typeof import("../../server/net/grpc-message.js");
  grpcLean: typeof import("../../server/net/grpc-lean.js");
  listener: typeof import("../../server/net/listener.js");
  requestId: typeof import("../../server/net/request-id.js");
  decodeGuard: typeof import("../../server/rpc/decode-guard.js");
  schemas: typeof import("../../server/rpc/schemas.js");
  secretWire: typeof import("../../server/rpc/secret-wire.js");
  benchPb: typeof import("../../gen/veil/bench/v1/bench_pb.js");
  conversationPb: typeof import("../../gen/veil/v1/conversation_pb.js");
};

const PATHS: Record<keyof Modules, string> = {
  app: "server/app.js",
  config: "server/config.js",
  log: "server/log.js",
  cors: "server/net/cors.js",
  grpcMessage: "server/net/grpc-message.js",
  grpcLean: "server/net/grpc-lean.js",
  listener: "server/net/listener.js",
  requestId: "server/net/request-id.js",
  decodeGuard: "server/rpc/decode-guard.js",
  schemas: "server/rpc/schemas.js",
  secretWire: "server/rpc/secret-wire.js",
  benchPb: "gen/veil/bench/v1/bench_pb.js",
  conversationPb: "gen/veil/v1/conversation_pb.js",
};

/**
 * Loads every module from one tree, so descriptors and classes are never mixed between the two.
 * tsx wraps each function of the sources in a `__name` call and keeps source maps: a few per cent
 * of a unary call that users of a built server do not pay. VEIL_FROM_SOURCE=1 forces the sources.
 */
export async function loadVeilModules(): Promise<Modules & { from: "dist" | "sources" }> {
  const from = process.env.VEIL_FROM_SOURCE !== "1" && distIsFresh() ? "dist" : "sources";
  const base = new URL(from === "dist" ? "../../dist/" : "../../", import.meta.url);
  const entries = await Promise.all(
    Object.entries(PATHS).map(async ([name, path]) => [name, await import(new URL(from === "dist" ? path : path.replace(/\.js$/, ".ts"), base).href)] as const),
  );
  return { from, ...(Object.fromEntries(entries) as Modules) };
}
