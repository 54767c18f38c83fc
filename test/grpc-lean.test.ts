// The lean gRPC path answers byte for byte what Connect's adapter alone answers, calls with a deadline (grpc-timeout) included.
import * as http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { GetSecretRequestSchema } from "../gen/veil/v1/secret_pb.js";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus as Status } from "../gen/grpc/health/v1/health_pb.js";
import type { VeilApp } from "../server/app.js";
import { createLogger } from "../server/log.js";
import { withCors } from "../server/net/cors.js";
import { createGrpcLeanPath } from "../server/net/grpc-lean.js";
import { withDeadlineCap } from "../server/net/deadline-cap.js";
import { withSpecGrpcMessage } from "../server/net/grpc-message.js";
import { listen, type RequestHandler, type StreamTaker } from "../server/net/listener.js";
import { withRequestId } from "../server/net/request-id.js";
import { guardDecoding } from "../server/rpc/decode-guard.js";
import { LIMITS } from "../server/rpc/schemas.js";
import { grpc, grpcJsClient } from "./support/grpc-js.js";
import { startTestServer, type TestServer } from "./support/server.js";

/** What a raw HTTP/2 gRPC call got back, minus what differs per call (date, request id). */
interface RawAnswer {
  status: number | undefined;
  headers: Record<string, unknown>;
  trailers: Record<string, unknown>;
  body: string;
}

const PER_CALL = new Set(["date", "x-request-id"]);

function strip(headers: http2.IncomingHttpHeaders): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !PER_CALL.has(k) && k !== ":status"));
}

/** One gRPC call over a raw HTTP/2 stream; `timeout` is sent as grpc-timeout as it is (malformed ones too). */
function rawCall(session: http2.ClientHttp2Session, path: string, body: Uint8Array, opts: { token?: string; timeout?: string | string[]; headers?: Record<string, string>; seen?: (headers: http2.IncomingHttpHeaders) => void }): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.timeout !== undefined ? { "grpc-timeout": opts.timeout } : {}),
      ...opts.headers,
    });
    let status: number | undefined;
    let headers: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      opts.seen?.(h);
      status = h[":status"] as number;
      headers = strip(h);
    });
    req.on("trailers", (t) => {
      trailers = strip(t);
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve({ status, headers, trailers, body: Buffer.concat(chunks).toString("hex") }));
    req.on("error", reject);
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    req.end(frame);
  });
}

/**
 * Two listeners over the same routes and interceptors, wrapped as startServer wraps the adapter: one
 * with the lean path in front (or the server at `leanUrl`), one the adapter alone.
 */
async function leanAndConnect(routes: (router: ConnectRouter) => void, interceptors: Interceptor[], options: { maxTimeoutMs?: number; leanUrl?: string } = {}) {
  const limits = { readMaxBytes: LIMITS.messageBytes, ...(options.maxTimeoutMs !== undefined ? { maxTimeoutMs: options.maxTimeoutMs } : {}) };
  const lean = createGrpcLeanPath({ interceptors, ...limits });
  const adapter = (withLean: boolean) =>
    connectNodeAdapter({
      routes: (router) => {
        routes(withLean ? lean.record(router) : router);
        guardDecoding(router, { readMaxBytes: LIMITS.messageBytes, logger: createLogger(() => {}) });
        if (withLean) lean.seal(router);
      },
      interceptors,
      acceptCompression: [],
      ...limits,
    });
  const serve = (handler: RequestHandler, streams?: StreamTaker) => listen(withRequestId(withCors(withSpecGrpcMessage(withDeadlineCap(handler)))), { host: "127.0.0.1", port: 0, ...(streams !== undefined ? { streams } : {}) });
  const listeners = [await serve(adapter(false))];
  if (options.leanUrl === undefined) listeners.push(await serve(adapter(true), lean.take));
  const leanUrl = options.leanUrl ?? listeners[1]!.url;
  const sessions = [http2.connect(listeners[0]!.url), http2.connect(leanUrl)] as const;
  return {
    connect: sessions[0],
    lean: sessions[1],
    leanUrl,
    connectUrl: listeners[0]!.url,
    async close() {
      for (const session of sessions) session.close();
      await Promise.all(listeners.map((l) => l.close({ drainMs: 1000 })));
    },
  };
}

/** The same call down both paths, one after the other; the two answers. */
async function both(pair: { lean: http2.ClientHttp2Session; connect: http2.ClientHttp2Session }, path: string, body: Uint8Array, opts: Parameters<typeof rawCall>[3]) {
  return { lean: await rawCall(pair.lean, path, body, opts), connect: await rawCall(pair.connect, path, body, opts) };
}

const CHECK = "/grpc.health.v1.Health/Check";
const check = (service = "") => toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service }));

describe("lean gRPC path: the same answers as Connect's adapter, with and without a deadline", () => {
  let s: TestServer;
  let pair: Awaited<ReturnType<typeof leanAndConnect>>;
  beforeAll(async () => {
    s = await startTestServer();
    // The real server (lean path in front) beside the same app's routes on Connect's adapter alone.
    const app: VeilApp = s.server.app;
    pair = await leanAndConnect((router) => app.routes(router), app.interceptors, { leanUrl: s.url });
  });
  afterAll(async () => {
    await pair.close();
    await s.close();
  });

  const get = (name: string) => toBinary(GetSecretRequestSchema, create(GetSecretRequestSchema, { name }));
  const cases: [string, string, () => Uint8Array, boolean][] = [
    ["Health/Check", CHECK, () => check(), false],
    ["GetSecret of a stored secret", "/veil.v1.SecretService/GetSecret", () => get("LEAN_KNOWN"), true],
    ["GetSecret with a name that breaks the rule (INVALID_ARGUMENT)", "/veil.v1.SecretService/GetSecret", () => get("9bad"), true],
    ["GetSecret of a missing secret (NOT_FOUND)", "/veil.v1.SecretService/GetSecret", () => get("LEAN_MISSING"), true],
    ["GetSecret without a token (UNAUTHENTICATED)", "/veil.v1.SecretService/GetSecret", () => get("LEAN_KNOWN"), false],
    ["a body that is not a GetSecretRequest (decode guard)", "/veil.v1.SecretService/GetSecret", () => Uint8Array.of(0x0a, 0x7f, 0x01), true],
    ["an empty body (no message)", "/veil.v1.SecretService/GetSecret", () => new Uint8Array(0), true],
  ];
  // No deadline; as grpc-js sends one (ms, rounded up), as grpcio 1.51 sends one (ms, 100 over), in µs, in seconds, and 0 (already past).
  const timeouts: (string | undefined)[] = [undefined, "29998m", "10100m", "9999873u", "30S", "0m"];

  it("stores the secret the cases read", async () => {
    const { createVeilClient } = await import("../client/index.js");
    const client = await createVeilClient({ baseUrl: s.url, token: s.token, protocol: "connect" });
    await client.secrets.setSecrets({ secrets: [{ name: "LEAN_KNOWN", text: "lean-canary-value" }] });
  });

  for (const [what, path, body, withToken] of cases) {
    for (const timeout of timeouts) {
      it(`${what}, ${timeout === undefined ? "no deadline" : `grpc-timeout ${timeout}`}`, async () => {
        const { lean, connect } = await both(pair, path, body(), { ...(withToken ? { token: s.token } : {}), ...(timeout !== undefined ? { timeout } : {}) });
        expect(lean).toEqual(connect);
        expect(lean.status).toBe(200);
        expect(lean.trailers["grpc-status"]).toBeDefined();
      });
    }
  }

  // Malformed values (Connect: INVALID_ARGUMENT "invalid grpc timeout value") and the header twice.
  const refused: (string | string[])[] = ["", "1", "S", "1s", "-1S", "1.5S", "123456789S", "1S, 2S", ["1S", "2S"]];
  for (const timeout of refused) {
    it(`grpc-timeout ${JSON.stringify(timeout)}: Connect's own answer`, async () => {
      for (const [path, body] of [[CHECK, check()] as const, ["/veil.v1.SecretService/GetSecret", get("LEAN_KNOWN")] as const]) {
        const { lean, connect } = await both(pair, path, body, { token: s.token, timeout });
        expect(lean).toEqual(connect);
        expect(lean.trailers["grpc-status"]).toBe("3");
      }
    });
  }

  it("a lean answer carries what the compat layer and wrappers add, as Connect's does: the date, the caller's sane request id, else a new one", async () => {
    const seen: http2.IncomingHttpHeaders[] = [];
    await rawCall(pair.lean, "/veil.v1.SecretService/GetSecret", get("LEAN_KNOWN"), { token: s.token, headers: { "x-request-id": "trace-42" }, seen: (h) => seen.push(h) });
    await rawCall(pair.lean, "/veil.v1.SecretService/GetSecret", get("LEAN_KNOWN"), { token: s.token, headers: { "x-request-id": "bad id\twith space" }, seen: (h) => seen.push(h) });
    await rawCall(pair.connect, "/veil.v1.SecretService/GetSecret", get("LEAN_KNOWN"), { token: s.token, seen: (h) => seen.push(h) });
    expect(seen[0]!["x-request-id"]).toBe("trace-42");
    expect(seen[1]!["x-request-id"]).toMatch(/^[0-9a-f]{16}$/);
    for (const h of seen) expect(new Date(String(h.date)).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(Object.keys(seen[0]!).sort()).toEqual(Object.keys(seen[2]!).sort());
  });

  it("a call from a browser page (an Origin header) gets the same answer and the same CORS headers as on Connect's adapter", async () => {
    // Each server's own origin, as a page it served would send it (the one origin allowed by default).
    const seen: http2.IncomingHttpHeaders[] = [];
    const opts = (url: string) => ({ token: s.token, headers: { origin: new URL(url).origin }, seen: (h: http2.IncomingHttpHeaders) => seen.push(h) });
    const lean = await rawCall(pair.lean, "/veil.v1.SecretService/GetSecret", get("LEAN_KNOWN"), opts(pair.leanUrl));
    const connect = await rawCall(pair.connect, "/veil.v1.SecretService/GetSecret", get("LEAN_KNOWN"), opts(pair.connectUrl));
    const cors = (h: Record<string, unknown>) => ({ ...h, "access-control-allow-origin": "(own)" });
    expect(cors(lean.headers)).toEqual(cors(connect.headers));
    expect({ ...lean, headers: {} }).toEqual({ ...connect, headers: {} });
    expect(lean.headers["access-control-expose-headers"]).toContain("x-request-id");
    expect(seen.map((h) => h["access-control-allow-origin"])).toEqual([new URL(pair.leanUrl).origin, new URL(pair.connectUrl).origin]);
  });

  it("a body over the message limit is handed on with the bytes read and the rest unread: Connect's own answer", async () => {
    const big = new Uint8Array(LIMITS.messageBytes + 4096).fill(0x41);
    const { lean, connect } = await both(pair, "/veil.v1.SecretService/GetSecret", big, { token: s.token });
    expect(lean).toEqual(connect);
    expect(lean.trailers["grpc-status"]).toBe("8");
  });

  it("a real grpc-js client with a deadline reads through the lean path", async () => {
    const health = grpcJsClient(s.port, "Health");
    const secrets = grpcJsClient(s.port, "SecretService", s.token);
    const call = <T>(c: typeof health, method: string, request: unknown) =>
      new Promise<T>((resolve, reject) => {
        const raw = c.raw as unknown as Record<string, (...a: unknown[]) => void>;
        raw[method]!.call(c.raw, request, c.metadata(), { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null, r: T) => (e ? reject(e) : resolve(r)));
      });
    try {
      expect(await call<{ status: string }>(health, "Check", {})).toMatchObject({ status: "SERVING" });
      const got = await call<{ value?: { text?: string } }>(secrets, "GetSecret", { name: "LEAN_KNOWN" });
      expect(JSON.stringify(got)).toContain("lean-canary-value");
      await expect(call(secrets, "GetSecret", { name: "LEAN_MISSING" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    } finally {
      health.close();
      secrets.close();
    }
  });
});

describe("lean gRPC path: a deadline runs out as on Connect's path", () => {
  // Signals of finished calls, to see what they were aborted with afterwards.
  const kept: AbortSignal[] = [];
  const keptContexts: HandlerContext[] = [];
  /** Health/Check as a test handler: "wait" waits for the signal, "keep" keeps it; each says what timeoutMs() gave (in whole seconds, rounded up). */
  const impl: ServiceImpl<typeof Health> = {
    async check(req, ctx) {
      // These two leave the signal unread during the call, and read it (if at all) only afterwards.
      if (req.service === "keep-context") {
        keptContexts.push(ctx);
        return { status: Status.SERVING };
      }
      if (req.service === "bad-header") {
        // A header HTTP/2 forbids (connection-specific): Node refuses to send it.
        ctx.responseHeader.set("connection", "keep-alive");
        return { status: Status.SERVING };
      }
      if (req.service === "late") {
        // First read once the deadline has passed: it must show the deadline, as on Connect's path.
        await new Promise((r) => setTimeout(r, 150));
        ctx.responseHeader.set("x-late-aborted", String(ctx.signal.aborted));
        ctx.responseHeader.set("x-late-reason", ctx.signal.reason instanceof ConnectError ? Code[ctx.signal.reason.code] : String((ctx.signal.reason as Error | undefined)?.name));
        return { status: Status.SERVING };
      }
      const left = ctx.timeoutMs();
      ctx.responseHeader.set("x-timeout-s", left === undefined ? "none" : String(Math.ceil(left / 1000)));
      ctx.responseHeader.set("x-aborted-at-start", String(ctx.signal.aborted));
      if (req.service === "keep") kept.push(ctx.signal);

      if (req.service === "wait") {
        await new Promise((_, reject) => {
          if (ctx.signal.aborted) reject(ctx.signal.reason);
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
        });
      }
      return { status: Status.SERVING };
    },
    async *watch() {},
  };
  let app: TestServer;
  let pair: Awaited<ReturnType<typeof leanAndConnect>>;
  let capped: Awaited<ReturnType<typeof leanAndConnect>>;
  beforeAll(async () => {
    // Veil's own interceptors (Health/Check's rule: public, not audited) around the test handler.
    app = await startTestServer();
    const routes = (router: ConnectRouter) => router.service(Health, impl);
    pair = await leanAndConnect(routes, app.server.app.interceptors);
    capped = await leanAndConnect(routes, app.server.app.interceptors, { maxTimeoutMs: 60_000 });
  });
  afterAll(async () => {
    await pair.close();
    await capped.close();
    await app.close();
  });

  for (const timeout of ["200m", "250000u", "0m"]) {
    it(`a handler waiting on its signal past grpc-timeout ${timeout}: DEADLINE_EXCEEDED`, async () => {
      const { lean, connect } = await both(pair, CHECK, check("wait"), { timeout });
      expect(lean).toEqual(connect);
      expect(lean.trailers["grpc-status"]).toBe("4");
      expect(lean.trailers["grpc-message"]).toBe("the operation timed out");
    });
  }

  const left: [string | undefined, string, string][] = [
    [undefined, "none", "false"],
    ["30S", "30", "false"],
    ["2H", "7200", "false"],
    ["1000000u", "1", "false"],
    ["0m", "0", "true"],
    // Past Node's timer range (2^31 - 1 ms): served as 24.8 days, not as already past (deadline-cap.ts).
    ["3000000S", "2147483", "false"],
    ["99999999H", "2147483", "false"],
  ];
  for (const [timeout, seconds, aborted] of left) {
    it(`timeoutMs() with ${timeout === undefined ? "no deadline" : `grpc-timeout ${timeout}`} is Connect's`, async () => {
      const { lean, connect } = await both(pair, CHECK, check(), timeout !== undefined ? { timeout } : {});
      expect(lean).toEqual(connect);
      expect(lean.headers["x-timeout-s"]).toBe(seconds);
      expect(lean.headers["x-aborted-at-start"]).toBe(aborted);
      expect(lean.trailers["grpc-status"]).toBe("0");
    });
  }

  it("a timeout over the adapter's maxTimeoutMs: Connect's INVALID_ARGUMENT on both paths", async () => {
    const { lean, connect } = await both(capped, CHECK, check("wait"), { timeout: "2M" });
    expect(lean).toEqual(connect);
    expect(lean.trailers["grpc-status"]).toBe("3");
    expect(lean.trailers["grpc-message"]).toBe("timeout 120000ms must be <= 60000");
    const within = await both(capped, CHECK, check(), { timeout: "1M" });
    expect(within.lean).toEqual(within.connect);
    expect(within.lean.trailers["grpc-status"]).toBe("0");
  });

  it("a call that ends before its deadline clears the timer: its signal ends as a plain abort, never DEADLINE_EXCEEDED", async () => {
    kept.length = 0;
    const { lean, connect } = await both(pair, CHECK, check("keep"), { timeout: "100m" });
    const second = await rawCall(pair.lean, CHECK, check("keep"), { timeout: "100m" });
    expect(lean).toEqual(connect);
    expect(second).toEqual(lean);
    await new Promise((r) => setTimeout(r, 250));
    expect(kept).toHaveLength(3);
    for (const signal of kept) {
      expect(signal.aborted).toBe(true);
      expect((signal.reason as Error).name).toBe("AbortError");
    }
    // The lean path ends every call with one shared reason (Connect makes a new one per call): both deadline calls took it.
    expect(kept[2]!.reason).toBe(kept[0]!.reason);
    expect(kept[1]!.reason).not.toBe(kept[0]!.reason);
  });

  it("a signal first read after its call ended is aborted, as on Connect's path", async () => {
    keptContexts.length = 0;
    const { lean, connect } = await both(pair, CHECK, check("keep-context"), {});
    expect(lean).toEqual(connect);
    expect(keptContexts).toHaveLength(2);
    for (const ctx of keptContexts) {
      expect(ctx.signal.aborted).toBe(true);
      expect((ctx.signal.reason as Error).name).toBe("AbortError");
    }
  });

  for (const timeout of ["3000000S", "99999999H"]) {
    it(`a deadline past Node's timer range (grpc-timeout ${timeout}) does not run out at once, on both paths alike`, async () => {
      const { lean, connect } = await both(pair, CHECK, check("late"), { timeout });
      expect(lean).toEqual(connect);
      expect(lean.headers["x-late-aborted"]).toBe("false");
      expect(lean.trailers["grpc-status"]).toBe("0");
    });
  }

  it("a signal first read after the deadline passed shows DEADLINE_EXCEEDED, on both paths alike", async () => {
    const { lean, connect } = await both(pair, CHECK, check("late"), { timeout: "50m" });
    expect(lean).toEqual(connect);
    expect(lean.headers["x-late-aborted"]).toBe("true");
    expect(lean.headers["x-late-reason"]).toBe("DeadlineExceeded");
  });

  it("a client that resets its stream (mid-body or mid-call, with an error code) ends that call only; the server answers the next", async () => {
    const frame = (body: Uint8Array) => {
      const out = Buffer.alloc(5 + body.length);
      out.writeUInt32BE(body.length, 1);
      out.set(body, 5);
      return out;
    };
    const reset = (whole: boolean) =>
      new Promise<void>((resolve) => {
        const req = pair.lean.request({ ":method": "POST", ":path": CHECK, "content-type": "application/grpc", te: "trailers" });
        req.on("error", () => {});
        req.on("close", () => resolve());
        const body = frame(check("wait"));
        if (whole) req.end(body);
        else req.write(body.subarray(0, 3));
        setTimeout(() => req.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 100);
      });
    await reset(false);
    await reset(true);
    const after = await rawCall(pair.lean, CHECK, check(), {});
    expect(after.trailers["grpc-status"]).toBe("0");
  });

  it("a response header Node refuses to send fails that call with a reset, and the server answers the next", async () => {
    await expect(rawCall(pair.lean, CHECK, check("bad-header"), {})).rejects.toMatchObject({ code: "ERR_HTTP2_STREAM_ERROR" });
    const after = await rawCall(pair.lean, CHECK, check(), {});
    expect(after.trailers["grpc-status"]).toBe("0");
  });

  it("a finished call leaves no timer behind", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    await rawCall(pair.lean, CHECK, check(), { timeout: "30S" });
    const before = timers();
    for (let i = 0; i < 5; i++) await rawCall(pair.lean, CHECK, check(), { timeout: "30S" });
    expect(timers()).toBeLessThan(before + 5);
  });

  it("a real grpc-js client's deadline ends a waiting call with DEADLINE_EXCEEDED", async () => {
    const client = new (grpc.makeGenericClientConstructor({}, "Health"))(new URL(pair.leanUrl).host, grpc.credentials.createInsecure());
    try {
      const status = await new Promise<grpc.StatusObject["code"]>((resolve) => {
        client.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          (b: Uint8Array) => Buffer.from(b),
          (b: Buffer) => b,
          check("wait"),
          new grpc.Metadata(),
          { deadline: Date.now() + 300 },
          (e: grpc.ServiceError | null) => resolve(e?.code ?? grpc.status.OK),
        );
      });
      expect(status).toBe(grpc.status.DEADLINE_EXCEEDED);
    } finally {
      client.close();
    }
  });
});
