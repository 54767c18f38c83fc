// Malformed request bodies answer INVALID_ARGUMENT on every protocol and method, never INTERNAL, never echo the bytes.
import { create, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVeilClient, type VeilClient } from "../client/index.js";
import { ServerReflectionRequestSchema, ServerReflectionResponseSchema } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { StartConversationRequestSchema } from "../gen/veil/v1/conversation_pb.js";
import { GetSecretRequestSchema, SetSecretsRequestSchema } from "../gen/veil/v1/secret_pb.js";
import { CreateTokenRequestSchema } from "../gen/veil/v1/token_pb.js";
import { startTestServer, type TestServer } from "./support/server.js";

const CANARY = "CANARY_malformed_5f1e";
const canary = Buffer.from(CANARY);

/** A method under test: its path, whether it streams, and where its string and number fields are. */
interface Method {
  path: string;
  stream: boolean;
  schema: DescMessage;
  /** The field 1 of every request here is a string: its full name, as the error names it. */
  stringField: string;
  /** A valid request that would store something (with the canary in it), for "valid then garbage". */
  valid: Uint8Array;
  /** JSON bodies: a value in a string field, a value in a number field. */
  str: (v: unknown) => unknown;
  num: (v: unknown) => unknown;
}

const METHODS: Method[] = [
  {
    path: "/veil.v1.SecretService/SetSecrets",
    stream: false,
    schema: SetSecretsRequestSchema,
    stringField: "veil.v1.SetSecretsRequest.session",
    valid: toBinary(SetSecretsRequestSchema, create(SetSecretsRequestSchema, { secrets: [{ name: "NOT_STORED", text: CANARY }] })),
    str: (v) => ({ session: v }),
    num: (v) => ({ secrets: [{ name: "NOT_STORED", text: CANARY, expectedVersion: v }] }),
  },
  {
    path: "/veil.v1.SecretService/GetSecret",
    stream: false,
    schema: GetSecretRequestSchema,
    stringField: "veil.v1.GetSecretRequest.session",
    valid: toBinary(GetSecretRequestSchema, create(GetSecretRequestSchema, { name: "NOT_STORED" })),
    str: (v) => ({ session: v }),
    num: (v) => ({ name: "NOT_STORED", version: v }),
  },
  {
    path: "/veil.v1.TokenService/CreateToken",
    stream: false,
    schema: CreateTokenRequestSchema,
    stringField: "veil.v1.CreateTokenRequest.tenant",
    valid: toBinary(CreateTokenRequestSchema, create(CreateTokenRequestSchema, { role: 2, agent: "bot", description: CANARY })),
    str: (v) => ({ tenant: v, role: "ROLE_AGENT", agent: "bot" }),
    num: (v) => ({ role: "ROLE_AGENT", agent: "bot", ttlSeconds: v }),
  },
  {
    path: "/veil.v1.ConversationService/StartConversation",
    stream: true,
    schema: StartConversationRequestSchema,
    stringField: "veil.v1.StartConversationRequest.session",
    valid: toBinary(StartConversationRequestSchema, create(StartConversationRequestSchema, { commands: [`echo ${CANARY}`] })),
    str: (v) => ({ session: v }),
    num: (v) => ({ commands: ["true"], timeoutMs: v }),
  },
];

const cat = (...parts: (Uint8Array | number[] | string)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : Buffer.from(p))));

/** Binary malformations of a method's request, with what the message must say. */
function binaryCases(m: Method): { name: string; body: Buffer; says: RegExp }[] {
  const field = m.stringField.replaceAll(".", "\\.");
  const cases = [
    { name: "truncated varint", body: cat(m.valid, [0x0a, 0x80]), says: /truncated varint/ },
    { name: "length past the end", body: cat([0x0a, 0x40], canary), says: new RegExp(`${field} at byte 0: length 64 runs past the end`) },
    { name: "wrong wire type", body: cat([0x0d], canary.subarray(0, 4)), says: new RegExp(`${field} at byte 0: wire type 32-bit where length-delimited was expected`) },
    { name: "wire type 7", body: cat([0x0f], canary), says: /invalid wire type 7 at|at byte 0: invalid wire type 7/ },
    { name: "garbage", body: cat(Array(11).fill(0xff), canary), says: /varint longer than 10 bytes/ },
    { name: "invalid UTF-8", body: cat([0x0a, canary.length + 1], canary, [0xff]), says: new RegExp(`${field} at byte 2: invalid UTF-8`) },
    { name: "valid message, then a cut field", body: cat(m.valid, [0x0a, 0x7f], canary), says: /runs past the end/ },
  ];
  if (m.schema === SetSecretsRequestSchema) {
    // A secret value that is not UTF-8, inside the nested SecretInput.
    const input = cat([0x0a, 10], "NOT_STORED", [0x12, canary.length + 2], canary, [0xc3, 0x28]);
    cases.push({ name: "invalid UTF-8 in a nested value", body: cat([0x12, input.length], input), says: /veil\.v1\.SecretInput\.text at byte \d+: invalid UTF-8/ });
  }
  return cases;
}

/** JSON malformations (raw bytes, so invalid UTF-8 can be sent). */
function jsonCases(m: Method): { name: string; body: Buffer; says: RegExp }[] {
  const text = (v: unknown) => JSON.stringify(v);
  const cases = [
    { name: "malformed JSON", body: cat(`{"x": "${CANARY}`), says: /invalid JSON/ },
    { name: "not an object", body: cat(`["${CANARY}"]`), says: /invalid value/ },
    { name: "string where a number goes", body: cat(text(m.num(CANARY))), says: /expected (number|bigint)/ },
    { name: "object where a string goes", body: cat(text(m.str({ [CANARY]: CANARY }))), says: /expected string/ },
    { name: "huge number", body: cat(text(m.num("__N__")).replace(`"__N__"`, "1e30")), says: /out of range/ },
    { name: "huge integer string", body: cat(text(m.num("123456789012345678901234567890"))), says: /out of range/ },
    { name: "invalid UTF-8", body: cat(text(m.str("__S__")).split("__S__")[0]!, canary, [0xff], text(m.str("__S__")).split("__S__")[1]!), says: /invalid UTF-8/ },
    { name: "lone surrogate", body: cat(text(m.str("__S__")).replace("__S__", `\\ud800${CANARY}`)), says: /invalid UTF-8/ },
  ];
  if (m.schema === CreateTokenRequestSchema) cases.push({ name: "unknown enum name", body: cat(`{"role": "ROLE_${CANARY}", "agent": "bot"}`), says: /CreateTokenRequest\.role: unknown enum value/ });
  if (m.schema === StartConversationRequestSchema) cases.push({ name: "misspelt enum name", body: cat(`{"commands": ["true"], "inject": "INJECT_REFERNCED"}`), says: /StartConversationRequest\.inject: unknown enum value/ });
  return cases;
}

/** What came back: the gRPC code and the message. */
interface Outcome {
  code: Code | undefined;
  message: string;
}

const envelope = (body: Uint8Array) => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
};

/** Reads every envelope of a response body. */
function frames(body: Buffer): { flags: number; data: Buffer }[] {
  const out = [];
  for (let pos = 0; pos + 5 <= body.length; ) {
    const length = body.readUInt32BE(pos + 1);
    out.push({ flags: body[pos]!, data: body.subarray(pos + 5, pos + 5 + length) });
    pos += 5 + length;
  }
  return out;
}

const connectCode = (name: string): Code => Code[name.replace(/(^|_)(\w)/g, (_, __, c: string) => c.toUpperCase()) as keyof typeof Code];

let srv: TestServer;
let admin: VeilClient;

/** gRPC over HTTP/2 with @grpc/grpc-js, the raw bytes sent through an identity serializer. */
function viaGrpcJs(m: Method, body: Buffer): Promise<Outcome> {
  const client = new grpc.Client(`127.0.0.1:${srv.port}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${srv.token}`);
  const id = (b: Buffer) => b;
  return new Promise<Outcome>((resolve) => {
    const done = (error: grpc.ServiceError | null) => {
      client.close();
      resolve({ code: error === null ? Code.Unknown + 100 : (error.code as number as Code), message: error?.details ?? "(succeeded)" });
    };
    if (!m.stream) {
      client.makeUnaryRequest(m.path, id, id, body, md, (error) => done(error));
      return;
    }
    const call = client.makeServerStreamRequest(m.path, id, id, body, md);
    call.on("data", () => {});
    call.on("error", (e: grpc.ServiceError) => done(e));
    call.on("end", () => {});
    call.on("status", (s: grpc.StatusObject) => s.code === 0 && done(null));
  });
}

async function viaGrpcWeb(m: Method, body: Buffer): Promise<Outcome> {
  const res = await fetch(srv.url + m.path, { method: "POST", headers: { "content-type": "application/grpc-web+proto", authorization: `Bearer ${srv.token}` }, body: new Uint8Array(envelope(body)) });
  const raw = Buffer.from(await res.arrayBuffer());
  const trailer = frames(raw).find((f) => (f.flags & 0x80) !== 0)?.data.toString() ?? "";
  const status = /grpc-status: ?(\d+)/.exec(trailer)?.[1] ?? res.headers.get("grpc-status") ?? undefined;
  const message = /grpc-message: ?([^\r\n]*)/.exec(trailer)?.[1] ?? res.headers.get("grpc-message") ?? "";
  return { code: status === undefined ? undefined : (Number(status) as Code), message: decodeURIComponent(message) };
}

async function viaConnect(m: Method, body: Buffer, json: boolean): Promise<Outcome> {
  const type = m.stream ? `application/connect+${json ? "json" : "proto"}` : `application/${json ? "json" : "proto"}`;
  const res = await fetch(srv.url + m.path, {
    method: "POST",
    headers: { "content-type": type, "connect-protocol-version": "1", authorization: `Bearer ${srv.token}` },
    body: new Uint8Array(m.stream ? envelope(body) : body),
  });
  const raw = Buffer.from(await res.arrayBuffer());
  const error = m.stream
    ? (JSON.parse(frames(raw).find((f) => (f.flags & 0x02) !== 0)?.data.toString() ?? "{}") as { error?: { code: string; message: string } }).error
    : res.ok
      ? undefined
      : (JSON.parse(raw.toString()) as { code: string; message: string });
  return { code: error === undefined ? undefined : connectCode(error.code), message: error?.message ?? "(succeeded)" };
}

const PROTOCOLS: { name: string; json: boolean; send: (m: Method, body: Buffer) => Promise<Outcome> }[] = [
  { name: "gRPC (grpc-js)", json: false, send: viaGrpcJs },
  { name: "gRPC-Web", json: false, send: viaGrpcWeb },
  { name: "Connect binary", json: false, send: (m, b) => viaConnect(m, b, false) },
  { name: "Connect JSON", json: true, send: (m, b) => viaConnect(m, b, true) },
];

beforeAll(async () => {
  srv = await startTestServer();
  admin = await createVeilClient({ baseUrl: srv.url, token: srv.token, protocol: "connect" });
});
afterAll(async () => {
  await srv?.close();
});

describe.each(PROTOCOLS)("$name", (protocol) => {
  describe.each(METHODS.map((m) => ({ ...m, method: m.path.split("/")[2] })))("$method", (m) => {
    const cases = protocol.json ? jsonCases(m) : binaryCases(m);
    it.each(cases)("$name: INVALID_ARGUMENT, the rule named, the bytes not echoed", async ({ body, says }) => {
      const got = await protocol.send(m, body);
      expect(got.code === undefined ? "no error" : Code[got.code], got.message).toBe("InvalidArgument");
      expect(got.message).toMatch(/^request could not be decoded: /);
      expect(got.message).toMatch(says);
      expect(got.message).not.toContain(CANARY);
      expect(got.message).not.toMatch(/CANARY/i);
    });
  });
});

describe("framing", () => {
  const set = METHODS[0]!;
  it("two messages where one goes answers INVALID_ARGUMENT", async () => {
    const res = await fetch(srv.url + set.path, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", authorization: `Bearer ${srv.token}` },
      body: new Uint8Array(Buffer.concat([envelope(set.valid), envelope(set.valid)])),
    });
    const trailer = frames(Buffer.from(await res.arrayBuffer())).find((f) => (f.flags & 0x80) !== 0)?.data.toString() ?? "";
    expect(trailer).toMatch(/grpc-status: ?3/);
    expect(decodeURIComponent(trailer)).toMatch(/expected one message, got 2/);
  });

  it("a well-formed request still works on every protocol", async () => {
    const body = toBinary(GetSecretRequestSchema, create(GetSecretRequestSchema, { name: "MISSING" }));
    const get = METHODS[1]!;
    for (const p of PROTOCOLS.filter((x) => !x.json)) expect(Code[(await p.send(get, Buffer.from(body))).code!], p.name).toBe("NotFound");
    // Unknown JSON keys stay ignored (a newer client may send fields this server does not know).
    expect(Code[(await viaConnect(get, Buffer.from(JSON.stringify({ name: "MISSING", fieldFromTheFuture: 1 })), true)).code!]).toBe("NotFound");
  });
});

describe("request streams are left alone", () => {
  it("server reflection (a bidi stream) answers each request while the stream stays open", async () => {
    const client = new grpc.Client(`127.0.0.1:${srv.port}`, grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest(
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
    );
    const first = new Promise<unknown>((resolve, reject) => {
      call.once("data", resolve);
      call.once("error", reject);
    });
    // Written, not ended: a guard that buffered the whole body would never answer.
    call.write(toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } })));
    const response = (await first) as { messageResponse: { case: string; value: { service: { name: string }[] } } };
    expect(response.messageResponse.value.service.map((s) => s.name)).toContain("veil.v1.SecretService");
    call.end();
    client.close();
  });
});

describe("after every malformed request", () => {
  it("nothing was stored, no conversation started, and the logs never hold the canary", async () => {
    const secrets = await admin.secrets.listSecrets({});
    expect(secrets.secrets.map((s) => s.name)).toEqual([]);
    const tokens = await admin.tokens.listTokens({});
    expect(tokens.tokens.filter((t) => t.role !== 1)).toEqual([]);
    expect(srv.server.app.conversations.size).toBe(0);
    expect(srv.logs.join("\n")).not.toContain(CANARY);
    expect(srv.logs.some((l) => l.includes("request could not be decoded"))).toBe(true);
  });
});
