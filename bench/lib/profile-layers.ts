// Reads a --cpu-prof file and prints self time per layer (http2, Connect, interceptors, domain, store...), to see where a call's time goes.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Layers in match order: the first whose test passes names a frame's layer. */
const LAYERS: [string, (url: string, fn: string) => boolean][] = [
  ["idle", (_u, f) => f === "(idle)"],
  ["start-up (module loading)", (u, f) => u.includes("node:internal/modules") || u.includes("cjs-module-lexer") || u.includes("/tsx/") || u.includes("node:internal/bootstrap") || f === "compileSourceTextModule"],
  ["GC", (_u, f) => f === "(garbage collector)"],
  ["AbortController, AbortSignal, DOMException", (u) => u.includes("abort_controller") || u.includes("domexception")],
  ["program (native, unattributed)", (_u, f) => f === "(program)"],
  ["Connect gRPC protocol (protocol-grpc)", (u) => u.includes("@connectrpc/connect/dist") && u.includes("protocol-grpc")],
  ["Connect gRPC-web/Connect protocols", (u) => u.includes("@connectrpc/connect/dist") && (u.includes("protocol-grpc-web") || u.includes("protocol-connect"))],
  ["Connect universal handler, envelopes, async iterables", (u) => u.includes("@connectrpc/connect/dist") && u.includes("/protocol/")],
  ["Connect router, interceptor chain, errors", (u) => u.includes("@connectrpc/connect/dist")],
  ["connect-node adapter (node <-> universal)", (u) => u.includes("@connectrpc/connect-node")],
  ["protobuf encode/decode", (u) => u.includes("@bufbuild/protobuf")],
  ["validation (zod)", (u) => u.includes("/zod/")],
  ["metrics (prom-client)", (u) => u.includes("prom-client")],
  ["Veil interceptor: auth", (u) => u.includes("server/rpc/auth")],
  ["Veil interceptor: audit", (u) => u.includes("server/rpc/audit") || u.includes("server/domain/audit")],
  ["Veil interceptor: logging (+ server/log.ts)", (u) => u.includes("server/rpc/logging") || u.includes("server/log.ts") || u.includes("request-id")],
  ["Veil interceptor: metrics", (u) => u.includes("server/rpc/metrics") || u.includes("server/metrics")],
  ["Veil interceptor: validation, rules", (u) => u.includes("server/rpc/validate") || u.includes("server/rpc/rules") || u.includes("server/rpc/schemas")],
  ["Veil rpc: around(), errors, decode guard", (u) => u.includes("server/rpc/")],
  ["Veil services", (u) => u.includes("server/services/")],
  ["Veil masker", (u) => u.includes("server/domain/masker")],
  ["Veil executor (pipes, shell)", (u) => u.includes("server/domain/executor")],
  ["Veil domain (tokens, vault, policy, seal)", (u) => u.includes("server/domain/")],
  ["Veil store", (u) => u.includes("server/store/") || u.includes("/level") || u.includes("abstract-level")],
  ["Veil HTTP wrappers (listener, cors, grpc-message)", (u) => u.includes("server/net/") || u.includes("server/server.ts")],
  ["bench-only code", (u) => u.includes("/bench/")],
  ["node http2", (u) => u.includes("node:internal/http2")],
  ["node streams (req/res compat, Readable/Writable)", (u) => u.includes("node:internal/streams") || u.includes("stream_base_commons")],
  ["node events, timers, ticks, other core", (u) => u.startsWith("node:")],
  ["native (crypto, buffers, builtins)", (u) => u === ""],
  ["other JS", () => true],
];

/** Self milliseconds per layer, busy time only (idle left out of the shares). */
export function layerShares(profile: Profile): { layer: string; ms: number; share: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0));
  }
  const totals = new Map<string, number>();
  for (const [id, us] of self) {
    const { url, functionName } = byId.get(id)!.callFrame;
    const layer = LAYERS.find(([, test]) => test(url, functionName))![0];
    totals.set(layer, (totals.get(layer) ?? 0) + us);
  }
  // Idle and start-up are not per-call work: left out of the shares.
  const counted = ([l]: [string, number]) => l !== "idle" && !l.startsWith("start-up");
  const busy = [...totals].filter(counted).reduce((s, [, us]) => s + us, 0);
  return [...totals]
    .filter(counted)
    .map(([layer, us]) => ({ layer, ms: us / 1000, share: us / busy }))
    .sort((a, b) => b.ms - a.ms);
}

/** The top self-time functions, for finding the hot spot inside a layer. */
export function topFunctions(profile: Profile, n: number): string[] {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const { url, functionName } = byId.get(profile.samples[i]!)!.callFrame;
    if (functionName === "(idle)" || LAYERS[1]![1](url, functionName)) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    busy += dt;
    const key = `${functionName || "(anon)"} ${url.replace(/.*node_modules\//, "").replace(/.*\/perf\//, "")}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => `${((100 * us) / busy).toFixed(1).padStart(5)} %  ${k}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [file, top = "0"] = process.argv.slice(2);
  const profile = JSON.parse(readFileSync(file!, "utf8")) as Profile;
  for (const { layer, ms, share } of layerShares(profile)) console.log(`${(share * 100).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(6)} ms  ${layer}`);
  if (Number(top) > 0) console.log(`\n${topFunctions(profile, Number(top)).join("\n")}`);
}
