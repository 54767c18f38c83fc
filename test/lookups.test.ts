// Lookup secrets against real local upstreams: header expressions, JSON pointers, TTL caching, failures, private addresses, TLS, reads and masking.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, createVeilClient, ListSecretsResponseSchema, Role, ValueKind, type VeilClient } from "../client/index.js";
import { detectSandbox } from "../server/domain/executor.js";
import { startUpstream, type Upstream } from "./support/egress-upstream.js";
import { expectCode } from "./support/expect-code.js";
import { type LookupUpstream, startLookupUpstream } from "./support/lookup-upstream.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { tempDir } from "./support/temp-dir.js";

const hasBwrap = (await detectSandbox("required")).kind === "bubblewrap";
const skipNote = hasBwrap ? "" : " (skipped: bubblewrap is not installed)";
/** What the upstream answers: the fetched value. */
const FETCHED = "lk-canary-Resp-7c1d9e2f4a6b";
/** The static secret a header expression names: the upstream insists on it. */
const BOOT = "hdr-canary-Boot-3e5f7a9b1c2d";
const QUERY_KEY = "qk-canary-Query-5b8e";
const STATIC = "st-canary-Static-9d0e1f2a";
const CANARIES = /lk-canary|hdr-canary|qk-canary|st-canary/;

const lookup = (origin: string, path: string, extra: Record<string, unknown> = {}) => ({
  url: `${origin}${path}`,
  headers: { Authorization: "Bearer {{ secrets.BOOT }}" },
  jsonPointer: "/token",
  ...extra,
});

describe("lookup secrets", () => {
  let up: LookupUpstream;
  let tls: Upstream;
  let s: TestServer;
  let closed: TestServer;
  let admin: VeilClient;
  let reader: VeilClient;
  let bot: VeilClient;
  const dir = tempDir();

  beforeAll(async () => {
    up = await startLookupUpstream(FETCHED, BOOT);
    tls = await startUpstream();
    const caFile = join(dir.path, "upstream-ca.pem");
    writeFileSync(caFile, tls.caPem);
    // The upstreams are on loopback: this server allows that explicitly; `closed` does not.
    s = await startTestServer({ extraFlags: ["--allow-private-lookups", "--lookup-ca-file", caFile] });
    closed = await startTestServer();
    admin = await createVeilClient({ baseUrl: s.url, token: s.token });
    const agentToken = async (agent: string) => (await admin.tokens.createToken({ role: Role.AGENT, agent })).token;
    reader = await createVeilClient({ baseUrl: s.url, token: await agentToken("reader") });
    bot = await createVeilClient({ baseUrl: s.url, token: await agentToken("bot") });
    await admin.secrets.setSecrets({
      secrets: [
        { name: "BOOT", text: BOOT, allowedAgents: ["nobody"] },
        { name: "STATIC", text: STATIC },
        { name: "API_TOKEN", lookup: lookup(up.origin, `/token?key=${QUERY_KEY}`, { ttlSeconds: 60 }), agentReaders: ["reader"], allowedAgents: ["reader", "bot"] },
      ],
    });
  });
  afterAll(async () => {
    await s.close();
    await closed.close();
    await up.close();
    await tls.close();
    dir.cleanup();
    // Never logged: not the fetched value, not the header secret, not the URL's query.
    expect(s.logs.join("\n")).not.toMatch(CANARIES);
    expect(closed.logs.join("\n")).not.toMatch(CANARIES);
  });

  it("stores a lookup without fetching it, and describes it without credentials", async () => {
    const before = up.seen.length;
    const res = await admin.secrets.setSecrets({ secrets: [{ name: "LATER", lookup: lookup(up.origin, `/token?key=${QUERY_KEY}`, { ttlSeconds: 300 }) }] });
    expect(up.seen.length).toBe(before);
    const meta = res.secrets[0]!;
    expect(meta.kind).toBe(ValueKind.LOOKUP);
    expect(meta.lookup).toMatchObject({ method: "GET", origin: up.origin, jsonPointer: "/token", ttlSeconds: 300, timeoutMs: 5000 });
    const listed = await admin.secrets.listSecrets({});
    expect(Buffer.from(toBinary(ListSecretsResponseSchema, listed)).toString("latin1")).not.toMatch(/canary|Bearer|secrets\.BOOT/);
    expect(s.logs.join("\n")).toContain("--allow-private-lookups");
  });

  it("GetSecret by an admin or a reader fetches (header expression resolved server-side); a non-reader agent is denied", async () => {
    const got = await admin.secrets.getSecret({ name: "API_TOKEN" });
    expect(got.text).toBe(FETCHED);
    expect(got.meta?.kind).toBe(ValueKind.LOOKUP);
    const last = up.seen.at(-1)!;
    expect(last.authorization).toBe(`Bearer ${BOOT}`);
    expect((await reader.secrets.getSecret({ name: "API_TOKEN" })).text).toBe(FETCHED);
    await expectCode(bot.secrets.getSecret({ name: "API_TOKEN" }), Code.PermissionDenied, /not an agent_reader/);
  });

  it("caches for at most ttl_seconds per version; ttl 0 fetches every time", async () => {
    await admin.secrets.setSecrets({ secrets: [{ name: "CACHED", lookup: lookup(up.origin, "/token?c=1", { ttlSeconds: 1 }) }, { name: "FRESH", lookup: lookup(up.origin, "/token?c=2") }] });
    const n = () => up.count("/token");
    let start = n();
    for (let i = 0; i < 3; i++) expect((await admin.secrets.getSecret({ name: "CACHED" })).text).toBe(FETCHED);
    expect(n() - start).toBe(1);
    await new Promise((ok) => setTimeout(ok, 1100));
    await admin.secrets.getSecret({ name: "CACHED" });
    expect(n() - start).toBe(2);
    // A new version is a new cache entry.
    await admin.secrets.setSecrets({ secrets: [{ name: "CACHED", lookup: lookup(up.origin, "/token?c=3", { ttlSeconds: 60 }) }] });
    await admin.secrets.getSecret({ name: "CACHED" });
    expect(n() - start).toBe(3);
    start = n();
    for (let i = 0; i < 3; i++) await admin.secrets.getSecret({ name: "FRESH" });
    expect(n() - start).toBe(3);
  });

  it("answers a number as text, and the whole body without a pointer", async () => {
    await admin.secrets.setSecrets({
      secrets: [
        { name: "NUM", lookup: lookup(up.origin, "/token", { jsonPointer: "/n" }) },
        { name: "BODY", lookup: { url: `${up.origin}/text`, method: "POST" } },
      ],
    });
    expect((await admin.secrets.getSecret({ name: "NUM" })).text).toBe("42");
    expect((await admin.secrets.getSecret({ name: "BODY" })).text).toBe(FETCHED);
    expect(up.seen.at(-1)?.method).toBe("POST");
  });

  it("fails with FAILED_PRECONDITION naming the secret and the kind of failure, never quoting the response", async () => {
    const cases = [
      { name: "F_500", spec: lookup(up.origin, "/fail"), message: /^name: lookup for F_500 failed: HTTP 500$/ },
      { name: "F_SLOW", spec: lookup(up.origin, "/slow", { timeoutMs: 300 }), message: /^name: lookup for F_SLOW failed: timed out after 300 ms$/ },
      { name: "F_HTML", spec: lookup(up.origin, "/html"), message: /^name: lookup for F_HTML failed: response is not JSON$/ },
      { name: "F_PTR", spec: lookup(up.origin, "/token", { jsonPointer: "/nope" }), message: /^name: lookup for F_PTR failed: json_pointer \/nope not found$/ },
      { name: "F_OBJ", spec: lookup(up.origin, "/token", { jsonPointer: "/obj" }), message: /json_pointer \/obj is not a string or number$/ },
      { name: "F_302", spec: lookup(up.origin, "/redirect"), message: /HTTP 302 \(redirects are not followed\)$/ },
      { name: "F_BIG", spec: { url: `${up.origin}/big` }, message: /response is larger than 64 KiB$/ },
      { name: "F_AUTH", spec: { ...lookup(up.origin, "/token"), headers: { Authorization: "Bearer {{ secrets.STATIC }}" } }, message: /HTTP 401$/ },
      { name: "F_HDR", spec: { ...lookup(up.origin, "/token"), headers: { "X-Key": "{{ secrets.NOPE }}" } }, message: /a header names NOPE, which is not a secret of this tenant$/ },
      { name: "F_DOWN", spec: { url: "http://127.0.0.1:1/" }, message: /network error \(ECONNREFUSED\)$/ },
    ];
    await admin.secrets.setSecrets({ secrets: cases.map((c) => ({ name: c.name, lookup: c.spec })) });
    for (const c of cases) {
      const error = await expectCode(admin.secrets.getSecret({ name: c.name }), Code.FailedPrecondition, c.message);
      expect(error.rawMessage).not.toMatch(CANARIES);
    }
  });

  it("verifies HTTPS with the system roots plus --lookup-ca-file", async () => {
    const spec = { url: `https://127.0.0.1:${tls.port}/echo`, headers: { Authorization: "Bearer {{ secrets.BOOT }}" }, jsonPointer: "/auth" };
    await admin.secrets.setSecrets({ secrets: [{ name: "OVER_TLS", lookup: spec }] });
    expect((await admin.secrets.getSecret({ name: "OVER_TLS" })).text).toBe(`Bearer ${BOOT}`);
    // A server that does not trust the upstream's CA refuses it (and allows private addresses, so TLS is what fails).
    const other = await startTestServer({ extraFlags: ["--allow-private-lookups"] });
    try {
      const c = await createVeilClient({ baseUrl: other.url, token: other.token });
      await c.secrets.setSecrets({ secrets: [{ name: "BOOT", text: BOOT }, { name: "OVER_TLS", lookup: spec }] });
      await expectCode(c.secrets.getSecret({ name: "OVER_TLS" }), Code.FailedPrecondition, /^name: lookup for OVER_TLS failed: TLS verification failed \(/);
    } finally {
      await other.close();
    }
  });

  it("refuses loopback and private addresses before any request without --allow-private-lookups", async () => {
    const c = await createVeilClient({ baseUrl: closed.url, token: closed.token });
    const port = up.port;
    await c.secrets.setSecrets({
      secrets: [
        { name: "BOOT", text: BOOT },
        { name: "BY_IP", lookup: lookup(`http://127.0.0.1:${port}`, "/token?via=ip") },
        { name: "BY_NAME", lookup: lookup(`http://localhost:${port}`, "/token?via=name") },
        { name: "BY_V6", lookup: lookup(`http://[::ffff:127.0.0.1]:${port}`, "/token?via=v6") },
      ],
    });
    const before = up.seen.length;
    await expectCode(c.secrets.getSecret({ name: "BY_IP" }), Code.FailedPrecondition, /lookup for BY_IP failed: refused before any request: 127\.0\.0\.1 is a loopback or private address \(the server needs --allow-private-lookups\)/);
    await expectCode(c.secrets.getSecret({ name: "BY_NAME" }), Code.FailedPrecondition, /lookup for BY_NAME failed: refused before any request: localhost resolves only to loopback or private addresses/);
    await expectCode(c.secrets.getSecret({ name: "BY_V6" }), Code.FailedPrecondition, /lookup for BY_V6 failed: refused before any request/);
    expect(up.seen.length).toBe(before);
  });

  it("validates the source: URL, method, headers, pointer, TTL, timeout, one kind of value", async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ lookup: { url: "ftp://example.com/x" } }, /secrets\[0\]\.lookup\.url: must be an https:\/\/ or http:\/\/ URL/],
      [{ lookup: { url: "https://u:p@example.com/" } }, /lookup\.url: must not hold user info/],
      [{ lookup: { url: "https://example.com/", method: "PUT" } }, /lookup\.method: must be GET or POST/],
      [{ lookup: { url: "https://example.com/", headers: { "X-A": "a\r\nInjected: 1" } } }, /lookup\.headers: X-A: values must not contain CR, LF or NUL/],
      [{ lookup: { url: "https://example.com/", headers: { Host: "x" } } }, /lookup\.headers: Host: names must not be a framing header/],
      [{ lookup: { url: "https://example.com/", headers: { A: "Bearer {{ secret.BOOT }}" } } }, /lookup\.headers: A: line 1, column 8: unknown expression/],
      [{ lookup: { url: "https://example.com/", headers: { A: "{{ secrets.SELF }}" } } }, /lookup\.headers: A: must not name SELF itself/],
      [{ lookup: { url: "https://example.com/", jsonPointer: "token" } }, /lookup\.json_pointer: must be empty \(the whole body\) or an RFC 6901 JSON pointer/],
      [{ lookup: { url: "https://example.com/", ttlSeconds: 86_401 } }, /lookup\.ttl_seconds: must be at most 86400/],
      [{ lookup: { url: "https://example.com/", timeoutMs: 30_001 } }, /lookup\.timeout_ms: must be at most 30000/],
      [{ text: "x", lookup: { url: "https://example.com/" } }, /secrets\[0\]\.lookup: set one of text, fields and lookup, not several/],
    ];
    for (const [input, message] of bad) {
      await expectCode(admin.secrets.setSecrets({ secrets: [{ name: "SELF", ...input }] }), Code.InvalidArgument, message);
    }
  });

  describe.skipIf(!hasBwrap)(`in conversations${skipNote}`, () => {
    it("a static and a lookup secret in one conversation: both injected and masked; the header secret is masked, never injected", async () => {
      const run = await collect(
        reader.startConversation({
          secrets: ["STATIC", "API_TOKEN"],
          commands: ['echo "static=$STATIC"; echo "token=$API_TOKEN"', `env | grep -c hdr-canary || true; echo ${BOOT}`],
          endWhenDone: true,
        }),
      );
      expect(run.started?.secrets).toEqual(["API_TOKEN", "STATIC"]);
      expect(run.commands.map((c) => c.stdoutText)).toEqual(["static=<secret-hidden>\ntoken=<secret-hidden>\n", "0\n<secret-hidden>\n"]);
    });

    it("a lookup referenced in an env value and in a rendered file: fetched, rendered, masked, not injected as $NAME", async () => {
      const run = await collect(
        reader.startConversation({
          env: { AUTH: "Bearer {{ secrets.API_TOKEN }}" },
          files: { "conf/token.txt": "token={{ secrets.API_TOKEN }}\n" },
          commands: ['echo "$AUTH"; cat conf/token.txt; echo "${API_TOKEN:-unset}"; [ "$AUTH" = "Bearer $(cut -d= -f2 conf/token.txt)" ] && echo same'],
          endWhenDone: true,
        }),
      );
      expect(run.commands[0]?.stdoutText).toBe("Bearer <secret-hidden>\ntoken=<secret-hidden>\nunset\nsame\n");
    });

    it("a failed lookup fails the start with FAILED_PRECONDITION naming the secret, before anything runs", async () => {
      await admin.secrets.setSecrets({ secrets: [{ name: "BROKEN", lookup: lookup(up.origin, "/fail") }] });
      const events: unknown[] = [];
      const error = await (async () => {
        for await (const e of admin.startConversation({ secrets: ["STATIC", "BROKEN"], commands: ["echo ran"], endWhenDone: true })) events.push(e);
      })().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.FailedPrecondition);
      expect((error as ConnectError).rawMessage).toBe("secrets[1]: lookup for BROKEN failed: HTTP 500");
      expect(events).toEqual([]);
    });
  });
});
