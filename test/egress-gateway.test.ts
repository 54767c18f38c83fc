// The egress gateway against a real loopback HTTPS upstream, driven by real curl and Python through a listener made here.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import { type AddressInfo, createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, parseServerConfig } from "../server/config.js";
import { serialNumber } from "../server/egress/ca.js";
import { createGateway, type Gateway, type GatewayAuditEvent } from "../server/egress/gateway.js";
import type { GatewayIdentity, GatewaySubstitution } from "../server/egress/identity.js";
import { matchesHost, parseHostRule } from "../server/egress/rules.js";
import { Replacer } from "../server/egress/substitute.js";
import { startUpstream, TunnelAgent, type Upstream } from "./support/egress-upstream.js";
import { tempDir } from "./support/temp-dir.js";

const VALUE = "sk-live-CANARY-EGRESS-0123456789abcdef01";
const BODY_VALUE = "body-CANARY-value-9f8e7d6c5b4a39281706";
const SHORT_VALUE = "short-CANARY1";
const PYTHON = "/usr/bin/python3";

/** A placeholder as the conversation would mint it: `veil_` + random base62, padded to the value's length. */
function placeholder(value: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const length = Math.max(37, Buffer.byteLength(value));
  return `veil_${[...randomBytes(length - 5)].map((b) => alphabet[b % 62]).join("")}`;
}
const PH = placeholder(VALUE);
const BODY_PH = placeholder(BODY_VALUE);
const SHORT_PH = placeholder(SHORT_VALUE);

/** Runs a command without blocking the event loop (the gateway and upstream live in this process). */
function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr });
    });
  });
}

async function listen(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return server;
}
const portOf = (server: Server) => (server.address() as AddressInfo).port;

describe("egress gateway", () => {
  let up: Upstream;
  let dir: { path: string; cleanup: () => void };
  const audit: GatewayAuditEvent[] = [];
  const gateways: Gateway[] = [];
  let proxy: number;
  let veilCa: string;

  /** A gateway (sharing the data dir, so the CA too) attached to a fresh listener; answers the proxy port. */
  async function start(options: { allowPrivate: boolean; upstreamCa: boolean }): Promise<{ gateway: Gateway; port: number; listener: Server }> {
    const caFile = join(dir.path, "upstream-ca.pem");
    const gateway = await createGateway({
      dataDir: join(dir.path, "data"),
      workDirServerDir: join(dir.path, "srv"),
      ...(options.upstreamCa ? { egressCaFile: caFile } : {}),
      allowPrivate: options.allowPrivate,
      audit: (event) => {
        audit.push(event);
      },
      log: { log: () => {} },
    });
    gateways.push(gateway);
    const listener = await listen();
    gateway.attach(identity(), listener);
    return { gateway, port: portOf(listener), listener };
  }

  function identity(extra: GatewaySubstitution[] = []): GatewayIdentity {
    const sub = (secret: string, p: string, value: string, hosts: string[], body: boolean): GatewaySubstitution => ({ placeholder: p, value, secret, hosts, body });
    return {
      egressId: "eg_1",
      conversationId: "conv_1",
      tenant: "default",
      agent: "agent-a",
      tokenId: "tok_1",
      networkMode: "egress",
      allow: [`127.0.0.2:${up.port}`],
      substitutions: [
        sub("API_KEY", PH, VALUE, [`localhost:${up.port}`, `localhost:${up.httpPort}`], false),
        sub("BODY_KEY", BODY_PH, BODY_VALUE, [`localhost:${up.port}`], true),
        ...extra,
      ],
    };
  }

  const curl = (args: string[], port = proxy) => run("curl", ["-sS", "-x", `http://127.0.0.1:${port}`, "--cacert", veilCa, ...args]);

  beforeAll(async () => {
    up = await startUpstream();
    dir = tempDir("veil-egress-");
    mkdirSync(join(dir.path, "data"));
    mkdirSync(join(dir.path, "srv"));
    writeFileSync(join(dir.path, "upstream-ca.pem"), up.caPem);
    const main = await start({ allowPrivate: true, upstreamCa: true });
    proxy = main.port;
    veilCa = main.gateway.sandboxFiles.caCert;
  });
  afterAll(async () => {
    for (const g of gateways) g.close();
    await up.close();
    dir.cleanup();
  });

  it("keeps its CA in the data dir (key 0600) and writes the sandbox trust files", () => {
    const data = join(dir.path, "data");
    expect(statSync(join(data, "egress-ca-key.pem")).mode & 0o777).toBe(0o600);
    const files = gateways[0]!.sandboxFiles;
    const ca = readFileSync(join(data, "egress-ca.pem"), "utf8");
    expect(readFileSync(files.caCert, "utf8")).toBe(ca);
    const bundle = readFileSync(files.caBundle, "utf8");
    expect(bundle.endsWith(ca)).toBe(true);
    expect(bundle.split("BEGIN CERTIFICATE").length).toBeGreaterThan(20); // the system CAs too
    expect(bundle).not.toContain("PRIVATE KEY");
  });

  it("curl: the placeholder in Authorization reaches its own host as the value, and the echo comes back as the placeholder", async () => {
    const before = audit.length;
    const r = await curl(["-i", "-H", `Authorization: Bearer ${PH}`, `https://localhost:${up.port}/echo`]);
    expect(r.code, r.stderr).toBe(0);
    expect(up.seen.at(-1)!.authorization).toBe(`Bearer ${VALUE}`);
    expect(r.stdout).not.toContain(VALUE);
    expect(r.stdout).toContain(`x-echo-auth: Bearer ${PH}`);
    const body = r.stdout.split("\r\n\r\n").at(-1)!;
    expect(JSON.parse(body).auth).toBe(`Bearer ${PH}`);
    // Length-matched placeholders keep Content-Length exact.
    expect(r.stdout).toMatch(new RegExp(`content-length: ${Buffer.byteLength(body)}\\r\\n`, "i"));
    const uses = audit.slice(before).filter((e) => e.action === "egress.use");
    expect(uses).toEqual([expect.objectContaining({ secretName: "API_KEY", host: `localhost:${up.port}`, outcome: "OK", conversationId: "conv_1", agent: "agent-a" })]);
    expect(JSON.stringify(audit)).not.toContain("CANARY");
  });

  it("Python urllib through HTTPS_PROXY with SSL_CERT_FILE = the sandbox bundle", async () => {
    const code = `import urllib.request,os\nr=urllib.request.Request("https://localhost:${up.port}/echo",headers={"Authorization":"Bearer "+os.environ["KEY"]})\nprint(urllib.request.urlopen(r).read().decode())`;
    const env = { PATH: process.env.PATH ?? "", HTTPS_PROXY: `http://127.0.0.1:${proxy}`, SSL_CERT_FILE: gateways[0]!.sandboxFiles.caBundle, KEY: PH };
    const r = await run(PYTHON, ["-c", code], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).auth).toBe(`Bearer ${PH}`);
    expect(up.seen.at(-1)!.authorization).toBe(`Bearer ${VALUE}`);
  });

  it("refuses a placeholder sent to a host allowed only through egress_allow: 403, nothing forwarded, egress.denied", async () => {
    const seen = up.seen.length;
    const before = audit.length;
    const r = await curl(["-w", "\n%{http_code}", "-H", `Authorization: Bearer ${PH}`, `https://127.0.0.2:${up.port}/echo`]);
    expect(r.stdout).toContain("API_KEY may only be sent to its own hosts");
    expect(r.stdout.trim().endsWith("403")).toBe(true);
    expect(up.seen.length).toBe(seen);
    expect(audit.slice(before)).toEqual([expect.objectContaining({ action: "egress.denied", secretName: "API_KEY", host: `127.0.0.2:${up.port}`, outcome: "DENIED" })]);
    // The same host without a placeholder is reachable (egress_allow), unsubstituted.
    const ok = await curl([`https://127.0.0.2:${up.port}/echo`]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(up.seen.at(-1)!.localAddress).toBe("127.0.0.2");
  });

  it("refuses a host that is not allowed at CONNECT", async () => {
    const before = audit.length;
    const r = await curl(["https://example.com/"]);
    expect(r.code).toBe(56);
    expect(r.stderr).toContain("403");
    expect(audit.slice(before)).toEqual([expect.objectContaining({ action: "egress.denied", secretName: "", host: "example.com:443" })]);
  });

  it("refuses loopback without --egress-allow-private: a name resolving to it and a literal", async () => {
    const { port } = await start({ allowPrivate: false, upstreamCa: true });
    const before = audit.length;
    const byName = await curl(["-w", "\n%{http_code}", "-H", `Authorization: Bearer ${PH}`, `https://localhost:${up.port}/echo`], port);
    expect(byName.stdout).toContain("resolves only to loopback or private addresses");
    expect(byName.stdout.trim().endsWith("403")).toBe(true);
    const literal = await curl([`https://127.0.0.2:${up.port}/echo`], port);
    expect(literal.code).toBe(56);
    expect(literal.stderr).toContain("403");
    const denied = audit.slice(before).filter((e) => e.action === "egress.denied");
    expect(denied.map((e) => e.host)).toEqual([`localhost:${up.port}`, `127.0.0.2:${up.port}`]);
  });

  it("answers 502 when the upstream's certificate is not trusted (no --egress-ca-file)", async () => {
    const { port } = await start({ allowPrivate: true, upstreamCa: false });
    const r = await curl(["-w", "\n%{http_code}", `https://localhost:${up.port}/echo`], port);
    expect(r.code, r.stderr).toBe(0); // the sandbox side still trusts Veil's leaf
    expect(r.stdout).toMatch(/upstream localhost:\d+ failed: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER)/);
    expect(r.stdout.trim().endsWith("502")).toBe(true);
  });

  it("keeps the client connection and the upstream connection alive", async () => {
    const seen = up.seen.length;
    const r = await curl(["-v", "-H", `Authorization: Bearer ${PH}`, `https://localhost:${up.port}/echo`, `https://localhost:${up.port}/echo`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Re-using existing connection/);
    const [a, b] = up.seen.slice(seen);
    expect(a!.remotePort).toBe(b!.remotePort);
  });

  it("passes a streaming response through at once (tick gaps under 100 ms)", async () => {
    const agent = new TunnelAgent(proxy, readFileSync(veilCa, "utf8"));
    const delays: number[] = [];
    await new Promise<void>((resolve, reject) => {
      https
        .get({ host: "localhost", port: up.port, path: "/stream", agent }, (res) => {
          res.setEncoding("utf8");
          let buffered = "";
          res.on("data", (chunk: string) => {
            buffered += chunk;
            for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
              delays.push(Date.now() - Number(buffered.slice(0, nl).split(" ")[2]));
              buffered = buffered.slice(nl + 1);
            }
          });
          res.on("end", resolve);
        })
        .on("error", reject);
    });
    agent.destroy();
    expect(delays).toHaveLength(5);
    expect(Math.max(...delays)).toBeLessThan(100);
  });

  it("offers HTTP/1.1 only: curl --http2 falls back", async () => {
    const r = await curl(["--http2", "-o", "/dev/null", "-w", "%{http_version}", `https://localhost:${up.port}/echo`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("1.1");
  });

  it("relays Expect: 100-continue", async () => {
    const file = join(dir.path, "body.bin");
    writeFileSync(file, "x".repeat(2048));
    const r = await curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect: 100-continue", "--data-binary", `@${file}`, `https://localhost:${up.port}/echo`]);
    expect(r.stdout).toBe("200");
    expect(up.seen.at(-1)!.body).toHaveLength(2048);
    expect(up.seen.at(-1)!.expect).toBe("100-continue");
  });

  it("substitutes in the body only for a secret that opts in (egress_body), keeping Content-Length when lengths match", async () => {
    const body = JSON.stringify({ key: BODY_PH, other: PH });
    const r = await curl(["-H", "content-type: application/json", "--data-binary", body, `https://localhost:${up.port}/echo`]);
    expect(r.code, r.stderr).toBe(0);
    const seen = up.seen.at(-1)!;
    expect(JSON.parse(seen.body)).toEqual({ key: BODY_VALUE, other: PH }); // API_KEY did not opt in
    expect(seen.contentLength).toBe(String(Buffer.byteLength(body)));
    // The echo shows placeholders only.
    expect(r.stdout).not.toContain("CANARY");
    expect(r.stdout).toContain(BODY_PH);
  });

  it("re-frames a body as chunked when the placeholder is longer than the value", async () => {
    // Its own conversation: one value that is not length-matched drops Content-Length from every response there.
    const listener = await listen();
    const short = { placeholder: SHORT_PH, value: SHORT_VALUE, secret: "SHORT_KEY", hosts: [`localhost:${up.port}`], body: true };
    const detach = gateways[0]!.attach(identity([short]), listener);
    const r = await curl(["-i", "--data-binary", `k=${SHORT_PH}`, `https://localhost:${up.port}/echo`], portOf(listener));
    detach();
    expect(r.code, r.stderr).toBe(0);
    const seen = up.seen.at(-1)!;
    expect(seen.body).toBe(`k=${SHORT_VALUE}`);
    expect(seen.contentLength).toBeUndefined();
    expect(seen.transferEncoding).toBe("chunked");
    expect(r.stdout).toContain(SHORT_PH);
    expect(r.stdout).not.toContain(SHORT_VALUE);
    expect(r.stdout).not.toMatch(/content-length/i);
  });

  it("refuses a foreign placeholder in a body", async () => {
    const seen = up.seen.length;
    const before = audit.length;
    const r = await curl(["-w", "\n%{http_code}", "--data-binary", `k=${PH}`, `https://127.0.0.2:${up.port}/echo`]);
    expect(r.stdout.trim().endsWith("403")).toBe(true);
    expect(up.seen.slice(seen).some((s) => s.body.includes(PH) || s.body.includes(VALUE))).toBe(false);
    expect(audit.slice(before)).toEqual([expect.objectContaining({ action: "egress.denied", secretName: "API_KEY" })]);
  });

  it("plain HTTP through the proxy: substitutes for the secret's host:port", async () => {
    const r = await curl(["-H", `Authorization: Bearer ${PH}`, `http://localhost:${up.httpPort}/echo`]);
    expect(r.code, r.stderr).toBe(0);
    expect(up.seen.at(-1)!.authorization).toBe(`Bearer ${VALUE}`);
    expect(JSON.parse(r.stdout).auth).toBe(`Bearer ${PH}`);
  });

  it("detach closes the listener", async () => {
    const gateway = gateways[0]!;
    const listener = await listen();
    const detach = gateway.attach(identity(), listener);
    const port = portOf(listener);
    expect((await curl(["-o", "/dev/null", "-w", "%{http_code}", `https://localhost:${up.port}/echo`], port)).stdout).toBe("200");
    detach();
    expect(listener.listening).toBe(false);
    expect((await curl([`https://localhost:${up.port}/echo`], port)).code).toBe(7);
  });
});

describe("certificate serial numbers", () => {
  it("are positive 16-byte values with no leading zero byte (DER drops it, so a peer would read another serial)", () => {
    // 1 in 128 serials began with 0x00 before, which DER drops: 1,000 draws find it almost surely.
    const serials = Array.from({ length: 1000 }, serialNumber);
    for (const serial of serials) expect(serial).toMatch(/^(0[1-9a-f]|[1-7][0-9a-f])[0-9a-f]{30}$/);
    expect(new Set(serials).size).toBe(serials.length);
  });
});

describe("egress host rules", () => {
  const cases: Array<[rule: string, host: string, port: number, expected: boolean]> = [
    ["api.example.com", "api.example.com", 443, true],
    ["api.example.com", "api.example.com", 80, true],
    ["api.example.com", "api.example.com", 8443, false],
    ["api.example.com:8443", "api.example.com", 8443, true],
    ["api.example.com:8443", "api.example.com", 443, false],
    ["*.github.com", "api.github.com", 443, true],
    ["*.github.com", "a.b.github.com", 443, true],
    ["*.github.com", "github.com", 443, false],
    ["*.github.com", "evilgithub.com", 443, false],
    ["API.Example.COM", "api.example.com", 443, true],
    ["api.example.com", "API.EXAMPLE.com", 443, true],
    ["api.example.com", "api.example.com.", 443, true],
    ["127.0.0.2:9000", "127.0.0.2", 9000, true],
    ["[::1]:9000", "::1", 9000, true],
  ];
  it.each(cases)("%s admits %s:%d -> %s", (rule, host, port, expected) => {
    expect(matchesHost(rule, host, port)).toBe(expected);
  });
  it("rejects malformed rules with a reason", () => {
    for (const bad of ["", "a*.b.com", "*", "host:0", "host:70000", "http://x.com", "x.com/path", "*.1.2.3.4"]) {
      expect(typeof parseHostRule(bad), bad).toBe("string");
    }
  });
});

describe("streaming Replacer", () => {
  const pair = { from: Buffer.from("SECRETVALUE"), to: Buffer.from("PLACEHOLDR!") };
  async function through(chunks: string[]): Promise<string[]> {
    const r = new Replacer([pair]);
    const out: string[] = [];
    r.on("data", (b: Buffer) => out.push(b.toString()));
    const done = new Promise((ok) => r.on("end", ok));
    for (const c of chunks) r.write(c);
    r.end();
    await done;
    return out;
  }
  it("finds a value split over chunks", async () => {
    expect((await through(["abc SECR", "ETVAL", "UE def"])).join("")).toBe("abc PLACEHOLDR! def");
  });
  it("holds back only a tail that could start a value", async () => {
    const out = await through(["tick 1\n", "tick 2 S", "x\n"]);
    expect(out[0]).toBe("tick 1\n");
    expect(out[1]).toBe("tick 2 ");
    expect(out.join("")).toBe("tick 1\ntick 2 Sx\n");
  });
});

describe("egress server flags", () => {
  it("--egress-allow-private is a switch (off by default) and --egress-ca-file a path", () => {
    expect(parseServerConfig([], {}).egressAllowPrivate).toBe(false);
    const on = parseServerConfig(["--egress-allow-private", "--egress-ca-file", "ca.pem"], {});
    expect(on.egressAllowPrivate).toBe(true);
    expect(on.egressCaFile).toBe(join(process.cwd(), "ca.pem"));
    expect(parseServerConfig([], { VEIL_EGRESS_ALLOW_PRIVATE: "true" }).egressAllowPrivate).toBe(true);
    expect(() => parseServerConfig([], { VEIL_EGRESS_ALLOW_PRIVATE: "yes" })).toThrow(new ConfigError("--egress-allow-private (or VEIL_EGRESS_ALLOW_PRIVATE): must be true or false"));
  });
});
