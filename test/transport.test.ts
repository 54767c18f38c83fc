// Transport layer against real peers: one port for gRPC, gRPC-Web and Connect, reflection, health, CORS, drain.
import { execFile } from "node:child_process";
import * as net from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  file_grpc_health_v1_health,
  Health,
  HealthCheckResponse_ServingStatus as Status,
} from "../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { file_veil_v1_audit } from "../gen/veil/v1/audit_pb.js";
import { file_veil_v1_conversation } from "../gen/veil/v1/conversation_pb.js";
import { file_veil_v1_keys } from "../gen/veil/v1/keys_pb.js";
import { file_veil_v1_secret, SecretService } from "../gen/veil/v1/secret_pb.js";
import { file_veil_v1_settings } from "../gen/veil/v1/settings_pb.js";
import { file_veil_v1_token } from "../gen/veil/v1/token_pb.js";
import { withCors } from "../server/net/cors.js";
import { detectProtocol, type Listener, listen, type RequestHandler } from "../server/net/listener.js";
import { createHealthService } from "../server/services/health.js";
import { registerReflection } from "../server/services/reflection.js";

const execFileP = promisify(execFile);
const bufBin = fileURLToPath(new URL("../node_modules/.bin/buf", import.meta.url));
const healthProto = fileURLToPath(new URL("../proto/grpc/health/v1/health.proto", import.meta.url));
const veilFiles = [
  file_veil_v1_secret,
  file_veil_v1_conversation,
  file_veil_v1_token,
  file_veil_v1_keys,
  file_veil_v1_settings,
  file_veil_v1_audit,
];
const SLOW_MS = 300;

function routes(router: ConnectRouter): void {
  router.service(Health, createHealthService(() => true, { services: [SecretService.typeName] }));
  // A stand-in slow method, so drain tests have a call in flight.
  router.service(SecretService, {
    async listSecrets() {
      await sleep(SLOW_MS);
      return {};
    },
  });
  registerReflection(router, [...veilFiles, file_grpc_health_v1_health]);
}

// Compression off, as the server will run it: gzip dominated CPU in streaming benchmarks.
const handler: RequestHandler = withCors(connectNodeAdapter({ routes, acceptCompression: [] }));

let server: Listener;
beforeAll(async () => {
  server = await listen(handler, { host: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await server.close({ drainMs: 1000 });
});

describe("detectProtocol", () => {
  const cases: { name: string; head: string; want: "h2" | "http1" | undefined }[] = [
    { name: "nothing yet", head: "", want: undefined },
    { name: "prefix of the preface", head: "PRI * HTTP/2", want: undefined },
    { name: "whole preface", head: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", want: "h2" },
    { name: "preface and a frame", head: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04", want: "h2" },
    { name: "HTTP/1.1 POST", head: "POST /x HTTP/1.1\r\n", want: "http1" },
    { name: "diverges at byte 2", head: "PO", want: "http1" },
    { name: "a PRI method that is not the preface", head: "PRI /x HTTP/1.1", want: "http1" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(detectProtocol(Buffer.from(c.head, "latin1"))).toBe(c.want);
    });
  }
});

describe("one port, every peer", () => {
  it("Connect gRPC transport over HTTP/2 (h2c)", async () => {
    const client = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    expect((await client.check({})).status).toBe(Status.SERVING);
    expect((await client.check({ service: "veil.v1.SecretService" })).status).toBe(Status.SERVING);
    const err = await client.check({ service: "nope.v1.Nothing" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
  });

  it("Connect protocol over HTTP/1.1, and plain fetch with JSON", async () => {
    const client = createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    expect((await client.check({})).status).toBe(Status.SERVING);

    const res = await fetch(`${server.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "SERVING" });
  });

  it("Connect protocol over HTTP/2", async () => {
    const client = createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
    expect((await client.check({})).status).toBe(Status.SERVING);
  });

  it("gRPC-Web over HTTP/1.1", async () => {
    const client = createClient(Health, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    expect((await client.check({})).status).toBe(Status.SERVING);
  });

  // The sniffer hands over what it read by unshift(); the rest of a large body arrives
  // straight from the socket handle. Both halves must reach the parser whole and in order.
  it("large request bodies arrive intact over both versions", async () => {
    const name = "n".repeat(300_000);
    const h1 = await fetch(`${server.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service: name }),
    });
    expect(h1.status).toBe(404);
    expect(((await h1.json()) as { code: string; message: string }).message).toContain(name);

    const client = createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
    const err = await client.check({ service: name }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
    expect((err as ConnectError).rawMessage).toContain(name);
  });

  it("unknown routes answer HTTP 404", async () => {
    const res = await fetch(`${server.url}/nope.v1.Nothing/Do`, { method: "POST", body: "{}" });
    expect(res.status).toBe(404);
  });

  it("@grpc/grpc-js loading the .proto at run time", async () => {
    const client = grpcJsHealthClient(server.port);
    try {
      expect(await grpcJsCheck(client, "")).toEqual({ status: "SERVING" });
      const err = await grpcJsCheck(client, "nope.v1.Nothing").catch((e: unknown) => e);
      expect((err as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
    } finally {
      client.close();
    }
  });
});

describe("buf curl through server reflection", () => {
  const curl = async (...args: string[]) => (await execFileP(bufBin, ["curl", ...args], { timeout: 15_000 })).stdout;

  for (const reflect of ["grpc-v1", "grpc-v1alpha"]) {
    it(`--list-services with --reflect-protocol ${reflect}`, async () => {
      const out = await curl(
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "--reflect-protocol",
        reflect,
        "--list-services",
        server.url,
      );
      const services = out.trim().split("\n");
      expect(services).toContain("veil.v1.SecretService");
      expect(services).toContain("veil.v1.ConversationService");
      expect(services).toContain("grpc.health.v1.Health");
      expect(services).toContain("grpc.reflection.v1.ServerReflection");
    });
  }

  it("--list-methods resolves every service's file, well-known-type imports included", async () => {
    const out = await curl("--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", server.url);
    expect(out).toContain("veil.v1.SecretService/GetSecret");
    expect(out).toContain("veil.v1.AuditService/ListAuditEvents");
  });

  for (const protocol of ["grpc", "connect", "grpcweb"]) {
    it(`Health/Check with --protocol ${protocol}`, async () => {
      const out = await curl(
        "--protocol",
        protocol,
        "--http2-prior-knowledge",
        "-d",
        "{}",
        `${server.url}/grpc.health.v1.Health/Check`,
      );
      expect(JSON.parse(out)).toEqual({ status: "SERVING" });
    });
  }

  it("Health/Check with --protocol connect over HTTP/1.1 and the v1alpha reflection", async () => {
    const out = await curl(
      "--protocol",
      "connect",
      "--reflect-protocol",
      "grpc-v1alpha",
      "--http2-prior-knowledge",
      "-d",
      '{"service":"veil.v1.SecretService"}',
      `${server.url}/grpc.health.v1.Health/Check`,
    );
    expect(JSON.parse(out)).toEqual({ status: "SERVING" });
  });
});

describe("reflection answers", () => {
  type Want = { files: string[] } | { error: Code } | { services: string[] } | { extensionsOf: string };
  const cases: { name: string; ask: reflectionV1.ServerReflectionRequest["messageRequest"]; want: Want }[] = [
    { name: "list services", ask: { case: "listServices", value: "" }, want: { services: ["grpc.health.v1.Health"] } },
    {
      name: "file by name, imports follow",
      ask: { case: "fileByFilename", value: "veil/v1/secret.proto" },
      want: { files: ["veil/v1/secret.proto", "google/protobuf/timestamp.proto"] },
    },
    {
      name: "well-known import by name",
      ask: { case: "fileByFilename", value: "google/protobuf/timestamp.proto" },
      want: { files: ["google/protobuf/timestamp.proto"] },
    },
    { name: "unknown file", ask: { case: "fileByFilename", value: "nope.proto" }, want: { error: Code.NotFound } },
    {
      name: "service",
      ask: { case: "fileContainingSymbol", value: "veil.v1.SecretService" },
      want: { files: ["veil/v1/secret.proto", "google/protobuf/timestamp.proto"] },
    },
    {
      name: "method, with a leading dot",
      ask: { case: "fileContainingSymbol", value: ".veil.v1.TokenService.CreateToken" },
      want: { files: ["veil/v1/token.proto", "google/protobuf/timestamp.proto"] },
    },
    {
      name: "message",
      ask: { case: "fileContainingSymbol", value: "grpc.health.v1.HealthCheckRequest" },
      want: { files: ["grpc/health/v1/health.proto"] },
    },
    {
      name: "nested enum",
      ask: { case: "fileContainingSymbol", value: "grpc.health.v1.HealthCheckResponse.ServingStatus" },
      want: { files: ["grpc/health/v1/health.proto"] },
    },
    {
      name: "well-known message",
      ask: { case: "fileContainingSymbol", value: "google.protobuf.Timestamp" },
      want: { files: ["google/protobuf/timestamp.proto"] },
    },
    { name: "unknown symbol", ask: { case: "fileContainingSymbol", value: "veil.v1.Nope" }, want: { error: Code.NotFound } },
    {
      name: "unknown method of a known service",
      ask: { case: "fileContainingSymbol", value: "veil.v1.SecretService.Nope" },
      want: { error: Code.NotFound },
    },
    {
      name: "extension numbers",
      ask: { case: "allExtensionNumbersOfType", value: "veil.v1.SecretMeta" },
      want: { extensionsOf: "veil.v1.SecretMeta" },
    },
    {
      name: "extension numbers of an unknown type",
      ask: { case: "allExtensionNumbersOfType", value: "veil.v1.Nope" },
      want: { error: Code.NotFound },
    },
  ];

  it("v1: every question on one bidi stream", async () => {
    const client = createClient(reflectionV1.ServerReflection, createGrpcTransport({ baseUrl: server.url }));
    async function* questions() {
      for (const c of cases) yield { host: "veil", messageRequest: c.ask };
    }
    const answers: reflectionV1.ServerReflectionResponse[] = [];
    for await (const res of client.serverReflectionInfo(questions())) answers.push(res);
    expect(answers).toHaveLength(cases.length);
    cases.forEach((c, i) => {
      const res = answers[i]!;
      expect(res.originalRequest?.messageRequest, c.name).toEqual(c.ask);
      const got = res.messageResponse;
      if ("files" in c.want) {
        expect(got.case, c.name).toBe("fileDescriptorResponse");
        const names =
          got.case === "fileDescriptorResponse"
            ? got.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name)
            : [];
        expect(names, c.name).toEqual(c.want.files);
      } else if ("error" in c.want) {
        expect(got.case, c.name).toBe("errorResponse");
        expect(got.case === "errorResponse" ? got.value.errorCode : undefined, c.name).toBe(c.want.error);
      } else if ("services" in c.want) {
        const names = got.case === "listServicesResponse" ? got.value.service.map((s) => s.name) : [];
        for (const name of c.want.services) expect(names, c.name).toContain(name);
      } else {
        expect(got.case, c.name).toBe("allExtensionNumbersResponse");
        expect(got.value, c.name).toMatchObject({ baseTypeName: c.want.extensionsOf, extensionNumber: [] });
      }
    });
  });

  it("v1alpha answers the same way", async () => {
    const client = createClient(reflectionV1alpha.ServerReflection, createGrpcTransport({ baseUrl: server.url }));
    async function* questions() {
      yield { messageRequest: { case: "fileContainingSymbol" as const, value: "veil.v1.SettingsService" } };
    }
    for await (const res of client.serverReflectionInfo(questions())) {
      expect(res.messageResponse.case).toBe("fileDescriptorResponse");
      const files = res.messageResponse.case === "fileDescriptorResponse" ? res.messageResponse.value.fileDescriptorProto : [];
      const proto = fromBinary(FileDescriptorProtoSchema, files[0]!);
      expect(proto.name).toBe("veil/v1/settings.proto");
      expect(proto.service.map((s) => s.name)).toContain("SettingsService");
    }
  });
});

describe("preface split across TCP writes", () => {
  for (const splitAt of [1, 5, 23]) {
    it(`HTTP/2 with the first ${splitAt} bytes sent alone`, async () => {
      const proxy = await splittingProxy(server.port, splitAt);
      try {
        const client = createClient(
          Health,
          createGrpcTransport({ baseUrl: `http://127.0.0.1:${proxy.port}`, sessionManager: new Http2SessionManager(`http://127.0.0.1:${proxy.port}`) }),
        );
        expect((await client.check({})).status).toBe(Status.SERVING);
      } finally {
        await proxy.close();
      }
    });
  }

  it("HTTP/1.1 with the first byte sent alone (still a preface prefix)", async () => {
    const proxy = await splittingProxy(server.port, 1);
    try {
      const client = createClient(
        Health,
        createConnectTransport({ baseUrl: `http://127.0.0.1:${proxy.port}`, httpVersion: "1.1", nodeOptions: { agent: false } }),
      );
      expect((await client.check({})).status).toBe(Status.SERVING);
    } finally {
      await proxy.close();
    }
  });
});

describe("CORS", () => {
  let any: Listener;
  beforeAll(async () => {
    any = await listen(withCors(handler, { allowedOrigins: "*" }), { host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await any.close({ drainMs: 500 });
  });

  it("by default allows only the server's own origin: a foreign preflight is refused, a same-origin call is served", async () => {
    const foreign = await fetch(`${server.url}/grpc.health.v1.Health/Check`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    expect(foreign.status).toBe(403);
    const own = await fetch(`${server.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { origin: server.url, "content-type": "application/json" },
      body: "{}",
    });
    expect(own.status).toBe(200);
    expect(own.headers.get("access-control-allow-origin")).toBe(server.url);
    expect(own.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("with *, answers preflight with 204 and the Connect and authorization headers", async () => {
    const res = await fetch(`${any.url}/grpc.health.v1.Health/Check`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, connect-protocol-version",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    // Header names are case-insensitive; Connect's lists capitalize them.
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/,\s*/);
    for (const h of ["authorization", "content-type", "connect-protocol-version", "x-grpc-web", "grpc-timeout"]) {
      expect(allowed).toContain(h);
    }
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
  });

  it("with *, decorates cross-origin responses, never allowing credentials", async () => {
    const res = await fetch(`${any.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { origin: "https://app.example", "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("grpc-status");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("with a list of origins, echoes allowed ones and refuses the others' preflight", async () => {
    const only = await listen(withCors(handler, { allowedOrigins: ["https://ok.example"] }), { host: "127.0.0.1", port: 0 });
    try {
      const preflight = (origin: string) =>
        fetch(`${only.url}/grpc.health.v1.Health/Check`, {
          method: "OPTIONS",
          headers: { origin, "access-control-request-method": "POST" },
        });
      const ok = await preflight("https://ok.example");
      expect(ok.status).toBe(204);
      expect(ok.headers.get("access-control-allow-origin")).toBe("https://ok.example");
      expect(ok.headers.get("vary")).toContain("origin");
      expect((await preflight("https://evil.example")).status).toBe(403);
    } finally {
      await only.close({ drainMs: 500 });
    }
  });
});

describe("close()", () => {
  it("finishes in-flight calls, and does not wait for idle HTTP/2 and HTTP/1.1 clients", async () => {
    const l = await listen(handler, { host: "127.0.0.1", port: 0 });
    const grpcJs = grpcJsHealthClient(l.port);
    const h1 = createClient(Health, createConnectTransport({ baseUrl: l.url, httpVersion: "1.1" }));
    const slow = createClient(
      SecretService,
      createGrpcTransport({ baseUrl: l.url, sessionManager: new Http2SessionManager(l.url) }),
    );
    try {
      // Both peers now hold an idle keep-alive connection.
      expect(await grpcJsCheck(grpcJs, "")).toEqual({ status: "SERVING" });
      expect((await h1.check({})).status).toBe(Status.SERVING);

      const inFlight = slow.listSecrets({});
      await sleep(50);
      const started = Date.now();
      await l.close({ drainMs: 5000 });
      const took = Date.now() - started;

      await expect(inFlight).resolves.toBeDefined();
      expect(took).toBeGreaterThanOrEqual(SLOW_MS - 100);
      expect(took).toBeLessThan(2000);
      // The port is closed for good.
      await expect(connectOnce(l.port)).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      grpcJs.close();
    }
  });

  it("cuts calls still running at the drain deadline", async () => {
    const l = await listen(handler, { host: "127.0.0.1", port: 0 });
    const slow = createClient(SecretService, createGrpcTransport({ baseUrl: l.url, sessionManager: new Http2SessionManager(l.url) }));
    const inFlight = slow.listSecrets({}).catch((e: unknown) => e);
    await sleep(50);
    const started = Date.now();
    await l.close({ drainMs: 100 });
    expect(Date.now() - started).toBeLessThan(SLOW_MS);
    expect(await inFlight).toBeInstanceOf(ConnectError);
  });

  it("drops connections that never send a full preface", async () => {
    const l = await listen(handler, { host: "127.0.0.1", port: 0, prefaceTimeoutMs: 100 });
    const socket = net.connect(l.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write("PRI * HTTP/2");
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    await closed;
    // And a silent connection does not hold up close().
    const silent = net.connect(l.port, "127.0.0.1");
    silent.on("error", () => {});
    await new Promise((resolve) => silent.once("connect", resolve));
    const started = Date.now();
    await l.close({ drainMs: 5000 });
    expect(Date.now() - started).toBeLessThan(500);
  });
});

describe("health service", () => {
  it("answers NOT_SERVING while draining, and Watch follows the change", async () => {
    let serving = true;
    const client = createClient(
      Health,
      createRouterTransport((router) => {
        router.service(Health, createHealthService(() => serving, { watchIntervalMs: 10 }));
      }),
    );
    const seen: Status[] = [];
    for await (const res of client.watch({})) {
      seen.push(res.status);
      serving = false;
    }
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
    expect((await client.check({})).status).toBe(Status.NOT_SERVING);
  });

  it("Watch on an unknown service says SERVICE_UNKNOWN instead of failing", async () => {
    const client = createClient(
      Health,
      createRouterTransport((router) => {
        router.service(Health, createHealthService(() => true));
      }),
    );
    const abort = new AbortController();
    for await (const res of client.watch({ service: "nope.v1.Nothing" }, { signal: abort.signal })) {
      expect(res.status).toBe(Status.SERVICE_UNKNOWN);
      break;
    }
    abort.abort();
  });
});

// ---- helpers ----

interface GrpcJsHealthClient extends grpc.Client {
  Check(
    req: { service: string },
    callback: (err: grpc.ServiceError | null, res?: { status: string }) => void,
  ): grpc.ClientUnaryCall;
}

/** A grpc-js client built only from the .proto file, as an independent peer would. */
function grpcJsHealthClient(port: number): GrpcJsHealthClient {
  const definition = protoLoader.loadSync(healthProto, { enums: String, defaults: true });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const Client = loaded.grpc.health.v1.Health;
  return new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as GrpcJsHealthClient;
}

function grpcJsCheck(client: GrpcJsHealthClient, service: string): Promise<{ status: string }> {
  return new Promise((resolve, reject) => {
    client.Check({ service }, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

/** A TCP proxy that sends the first `splitAt` bytes of each connection alone, then the rest 50 ms later. */
async function splittingProxy(targetPort: number, splitAt: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((downstream) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const s of [downstream, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("error", () => {
        downstream.destroy();
        upstream.destroy();
      });
      s.once("close", () => sockets.delete(s));
    }
    upstream.pipe(downstream);
    let first = true;
    downstream.on("data", (chunk: Buffer) => {
      if (!first) {
        upstream.write(chunk);
        return;
      }
      first = false;
      downstream.pause();
      upstream.write(chunk.subarray(0, splitAt));
      setTimeout(() => {
        upstream.write(chunk.subarray(splitAt));
        downstream.resume();
      }, 50);
    });
    downstream.on("end", () => upstream.end());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        proxy.close(() => resolve());
      }),
  };
}

function connectOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve();
    });
    socket.once("error", reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
