// The lean gRPC path answers byte for byte what Connect's adapter answers: the same call with a deadline takes Connect's path.
import * as http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { GetSecretRequestSchema } from "../gen/veil/v1/secret_pb.js";
import { HealthCheckRequestSchema } from "../gen/grpc/health/v1/health_pb.js";
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

/** One gRPC call over a raw HTTP/2 stream; `deadline` adds grpc-timeout, which sends it down Connect's own path. */
function rawCall(session: http2.ClientHttp2Session, path: string, body: Uint8Array, opts: { token?: string; deadline?: boolean }): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.deadline === true ? { "grpc-timeout": "30S" } : {}),
    });
    let status: number | undefined;
    let headers: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
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

describe("lean gRPC path: the same answers as Connect's adapter", () => {
  let s: TestServer;
  let session: http2.ClientHttp2Session;
  beforeAll(async () => {
    s = await startTestServer();
    session = http2.connect(s.url);
  });
  afterAll(async () => {
    session.close();
    await s.close();
  });

  const get = (name: string) => toBinary(GetSecretRequestSchema, create(GetSecretRequestSchema, { name }));
  const cases: [string, string, () => Uint8Array, boolean][] = [
    ["Health/Check", "/grpc.health.v1.Health/Check", () => toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema)), false],
    ["GetSecret of a stored secret", "/veil.v1.SecretService/GetSecret", () => get("LEAN_KNOWN"), true],
    ["GetSecret with a name that breaks the rule (INVALID_ARGUMENT)", "/veil.v1.SecretService/GetSecret", () => get("9bad"), true],
    ["GetSecret of a missing secret (NOT_FOUND)", "/veil.v1.SecretService/GetSecret", () => get("LEAN_MISSING"), true],
    ["GetSecret without a token (UNAUTHENTICATED)", "/veil.v1.SecretService/GetSecret", () => get("LEAN_KNOWN"), false],
    ["a body that is not a GetSecretRequest (decode guard)", "/veil.v1.SecretService/GetSecret", () => Uint8Array.of(0x0a, 0x7f, 0x01), true],
    ["an empty body (no message)", "/veil.v1.SecretService/GetSecret", () => new Uint8Array(0), true],
  ];

  it("stores the secret the cases read", async () => {
    const { createVeilClient } = await import("../client/index.js");
    const client = await createVeilClient({ baseUrl: s.url, token: s.token, protocol: "connect" });
    await client.secrets.setSecrets({ secrets: [{ name: "LEAN_KNOWN", text: "lean-canary-value" }] });
  });

  for (const [what, path, body, withToken] of cases) {
    it(what, async () => {
      const token = withToken ? s.token : undefined;
      const lean = await rawCall(session, path, body(), { ...(token !== undefined ? { token } : {}) });
      const connect = await rawCall(session, path, body(), { ...(token !== undefined ? { token } : {}), deadline: true });
      expect(lean).toEqual(connect);
      expect(lean.status).toBe(200);
      expect(lean.trailers["grpc-status"]).toBeDefined();
    });
  }
});
