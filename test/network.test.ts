// The real server on a real port, called over gRPC, the Connect protocol on HTTP/1.1, and grpc-js.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVeilClient, Role } from "../client/index.js";
import { expectCode } from "./support/expect-code.js";
import { grpc, grpcJsClient } from "./support/grpc-js.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { tempDir } from "./support/temp-dir.js";

const CANARY = "canary-NET-7f3a9c1e5b";

/** Every file under a dir, recursively, as bytes. */
function allFiles(dir: string): { path: string; bytes: Buffer }[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? allFiles(path) : [{ path, bytes: readFileSync(path) }];
  });
}

describe("network: one port, three protocols", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s.close();
  });

  for (const protocol of ["grpc", "connect", "grpc-web"] as const) {
    it(`sets, gets, lists and deletes over ${protocol}`, async () => {
      const client = await createVeilClient({ baseUrl: s.url, token: s.token, protocol });
      const name = `VIA_${protocol.replace("-", "_").toUpperCase()}`;
      await client.secrets.setSecrets({ secrets: [{ name, text: `${CANARY}-${protocol}`, metadata: { via: protocol } }] });
      expect((await client.secrets.getSecret({ name })).text).toBe(`${CANARY}-${protocol}`);
      expect((await client.secrets.listSecrets({ namePrefix: name })).secrets.map((m) => m.name)).toEqual([name]);
      await client.secrets.deleteSecret({ name });
      await expectCode(client.secrets.getSecret({ name }), Code.NotFound);
    });
  }

  it("answers the Connect protocol's JSON to a plain HTTP/1.1 fetch", async () => {
    const res = await fetch(`${s.url}/veil.v1.SecretService/SetSecrets`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${s.token}` },
      body: JSON.stringify({ secrets: [{ name: "FROM_FETCH", text: CANARY }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { secrets: { name: string; version: string }[] };
    expect(body.secrets[0]).toMatchObject({ name: "FROM_FETCH", version: "1" });
    const bad = await fetch(`${s.url}/veil.v1.SecretService/GetSecret`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${s.token}` },
      body: JSON.stringify({ name: "bad name" }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/^name: must match/) });
  });

  it("serves an independent @grpc/grpc-js client that loads the .proto files", async () => {
    const secrets = grpcJsClient(s.port, "SecretService", s.token);
    const tokens = grpcJsClient(s.port, "TokenService", s.token);
    const health = grpcJsClient(s.port, "Health");
    try {
      expect(await health.unary("Check", {})).toEqual({ status: "SERVING" });
      const set = await secrets.unary<{ secrets: { name: string; version: string; kind: string }[] }>("SetSecrets", {
        secrets: [{ name: "GRPC_JS", fields: { user: "u", password: CANARY } }],
      });
      expect(set.secrets[0]).toMatchObject({ name: "GRPC_JS", version: "1", kind: "VALUE_KIND_FIELDS" });
      const got = await secrets.unary<{ fields: Record<string, string> }>("GetSecret", { name: "GRPC_JS" });
      expect(got.fields).toEqual({ user: "u", password: CANARY });
      const agent = await tokens.unary<{ token: string }>("CreateToken", { role: "ROLE_AGENT", agent: "bot" });
      const asAgent = grpcJsClient(s.port, "SecretService", agent.token);
      const noToken = grpcJsClient(s.port, "SecretService");
      const cases: [() => Promise<unknown>, grpc.status, RegExp][] = [
        [() => secrets.unary("GetSecret", { name: "9bad" }), grpc.status.INVALID_ARGUMENT, /^name: must match \^\[A-Za-z\]/],
        [() => noToken.unary("ListSecrets", {}), grpc.status.UNAUTHENTICATED, /^authorization: /],
        [() => asAgent.unary("SetSecrets", { secrets: [{ name: "X", text: "y" }] }), grpc.status.PERMISSION_DENIED, /agent tokens cannot/],
        [() => secrets.unary("GetSecret", { name: "MISSING" }), grpc.status.NOT_FOUND, /^name: no secret named MISSING$/],
        [() => secrets.unary("SetSecrets", { secrets: [{ name: "GRPC_JS", text: "z", expected_version: 7 }] }), grpc.status.ABORTED, /expected_version: expected 7, the stored version is 1/],
      ];
      for (const [call, code, message] of cases) {
        const error = (await call().then(() => undefined, (e: unknown) => e)) as grpc.ServiceError;
        expect(grpc.status[error.code]).toBe(grpc.status[code]);
        expect(error.details).toMatch(message);
      }
      asAgent.close();
      noToken.close();
    } finally {
      secrets.close();
      tokens.close();
      health.close();
    }
  });

  it("answers RESOURCE_EXHAUSTED for a message over 4 MiB", async () => {
    const client = await createVeilClient({ baseUrl: s.url, token: s.token, protocol: "grpc" });
    const huge = Array.from({ length: 80 }, (_, i) => ({ name: `HUGE_${i}`, text: "h".repeat(60 * 1024) }));
    await expectCode(client.secrets.setSecrets({ secrets: huge }), Code.ResourceExhausted);
  });

  it("never writes a canary value to the data dir in the clear, nor to the logs", async () => {
    const client = await createVeilClient({ baseUrl: s.url, token: s.token });
    await client.secrets.setSecrets({ secrets: [{ name: "CANARY_TEXT", text: CANARY }, { name: "CANARY_FIELDS", fields: { pw: `${CANARY}-f` } }] });
    await client.secrets.getSecret({ name: "CANARY_TEXT" });
    await expectCode(client.secrets.setSecrets({ secrets: [{ name: "CANARY_TEXT", text: CANARY, expectedVersion: 9n }] }), Code.Aborted);
    const files = allFiles(s.dataDir);
    expect(files.length).toBeGreaterThan(3);
    for (const file of files) {
      expect(file.bytes.includes(CANARY), file.path).toBe(false);
      expect(file.bytes.includes(Buffer.from(CANARY).toString("base64")), file.path).toBe(false);
    }
    expect(s.logs.length).toBeGreaterThan(0);
    expect(s.logs.join("")).not.toContain(CANARY);
  });
});

describe("network: restarts", () => {
  it("keeps what was written across a restart, and refuses a wrong master key", async () => {
    const dir = tempDir();
    try {
      const first = await startTestServer({ dataDir: dir.path });
      const client = await createVeilClient({ baseUrl: first.url, token: first.token });
      await client.secrets.setSecrets({ secrets: [{ name: "SURVIVES", text: CANARY }] });
      const agent = await client.tokens.createToken({ role: Role.AGENT, agent: "bot" });
      await first.close();

      const second = await startTestServer({ dataDir: dir.path });
      expect(second.token).toBe(first.token);
      const again = await createVeilClient({ baseUrl: second.url, token: second.token });
      expect((await again.secrets.getSecret({ name: "SURVIVES" })).text).toBe(CANARY);
      const asAgent = await createVeilClient({ baseUrl: second.url, token: agent.token });
      expect((await asAgent.secrets.listSecrets({})).secrets.map((m) => m.name)).toEqual(["SURVIVES"]);
      await second.close();

      const wrongKey = Buffer.alloc(32, 9).toString("base64");
      await expect(startTestServer({ dataDir: dir.path, masterKey: wrongKey })).rejects.toThrow(/master key does not match this store/);
    } finally {
      dir.cleanup();
    }
  });
});
