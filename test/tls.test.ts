// TLS on the one port with certificates minted here: every protocol, grpc-js, the CLI, mTLS, SIGHUP reload, and no cleartext off loopback.
import { execFile, spawnSync } from "node:child_process";
import { copyFileSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import * as tls from "node:tls";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVeilClient, type VeilTlsOptions } from "../client/index.js";
import { ConfigError, parseServerConfig } from "../server/config.js";
import { spawnServer, VEIL_BIN } from "./support/child-server.js";
import { expectCode } from "./support/expect-code.js";
import { grpc, loadVeilProtos } from "./support/grpc-js.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { tempDir } from "./support/temp-dir.js";
import { testCa } from "./support/tls.js";

const CANARY = "canary-TLS-3e9d71a0c4";

/**
 * Runs `veil` without blocking the event loop: these servers run in the test's own process,
 * so support/cli.ts's spawnSync would stall them.
 */
function veilFor(s: TestServer) {
  return (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [VEIL_BIN, ...args],
        { env: { PATH: process.env.PATH ?? "", VEIL_URL: s.url, VEIL_DATA_DIR: s.dataDir, ...env }, encoding: "utf8" },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }),
      );
    });
}

/** GET over HTTPS with a given CA (and client certificate): status and body. */
function httpsGet(url: string, options: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ...options, agent: false }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

/** The serial of the certificate a new connection is served (upper-case hex, as Node gives it). */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ALPNProtocols: ["h2"] }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.on("error", reject);
  });
}

/** A grpc-js client of SecretService over TLS, with promise-returning ListSecrets. */
function grpcJsSecrets(port: number, credentials: grpc.ChannelCredentials, token: string) {
  const Ctor = loadVeilProtos().veil.v1.SecretService!;
  const client = new Ctor(`127.0.0.1:${port}`, credentials);
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return {
    list: () =>
      new Promise<{ secrets: { name: string }[] }>((resolve, reject) => {
        (client as unknown as Record<string, (...a: unknown[]) => void>).ListSecrets!.call(client, { name_prefix: "" }, md, (error: grpc.ServiceError | null, res: { secrets: { name: string }[] }) =>
          error ? reject(error) : resolve(res),
        );
      }),
    close: () => client.close(),
  };
}

describe("TLS", () => {
  const certs = tempDir();
  let ca: Awaited<ReturnType<typeof testCa>>;
  let s: TestServer;
  let trust: VeilTlsOptions;
  beforeAll(async () => {
    ca = await testCa(certs.path);
    const leaf = await ca.server();
    trust = { ca: ca.certPem };
    s = await startTestServer({ extraFlags: ["--tls-cert", leaf.certFile, "--tls-key", leaf.keyFile] });
  });
  afterAll(async () => {
    await s.close();
    certs.cleanup();
  });

  it("serves https:// only", async () => {
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // A cleartext client gets no answer from the TLS port.
    await expect(fetch(`${s.url.replace("https:", "http:")}/healthz`)).rejects.toThrow();
  });

  for (const protocol of ["grpc", "connect", "grpc-web"] as const) {
    it(`sets and gets over ${protocol} with the CA`, async () => {
      const client = await createVeilClient({ baseUrl: s.url, token: s.token, protocol, tls: trust });
      const name = `TLS_${protocol.replace("-", "_").toUpperCase()}`;
      await client.secrets.setSecrets({ secrets: [{ name, text: `${CANARY}-${protocol}` }] });
      expect((await client.secrets.getSecret({ name })).text).toBe(`${CANARY}-${protocol}`);
    });
  }

  it("refuses to start with a key that does not match the certificate, or a missing file, naming the flags", async () => {
    const other = await ca.server();
    const leaf = await ca.server();
    await expect(startTestServer({ extraFlags: ["--tls-cert", leaf.certFile, "--tls-key", other.keyFile] })).rejects.toThrow(
      /--tls-cert and --tls-key: the pair does not load/,
    );
    await expect(startTestServer({ extraFlags: ["--tls-cert", `${certs.path}/none.pem`, "--tls-key", other.keyFile] })).rejects.toThrow(ConfigError);
  });

  it("fails a client that does not trust the CA, saying so", async () => {
    for (const protocol of ["grpc", "connect"] as const) {
      const client = await createVeilClient({ baseUrl: s.url, token: s.token, protocol });
      await expect(client.secrets.listSecrets({})).rejects.toThrow(/unable to verify the first certificate/);
    }
  });

  it("serves h2 and HTTP/1.1 by ALPN: grpc-js with ssl credentials, and an HTTP/1.1 GET", async () => {
    await (await createVeilClient({ baseUrl: s.url, token: s.token, tls: trust })).secrets.setSecrets({ secrets: [{ name: "FOR_GRPC_JS", text: CANARY }] });
    const peer = grpcJsSecrets(s.port, grpc.credentials.createSsl(Buffer.from(ca.certPem)), s.token);
    try {
      expect((await peer.list()).secrets.map((m) => m.name)).toContain("FOR_GRPC_JS");
    } finally {
      peer.close();
    }
    expect(await httpsGet(`${s.url}/healthz`, { ca: ca.certPem })).toEqual({ status: 200, body: "ok\n" });
  });

  it("the CLI takes an https:// URL with --ca-file (or VEIL_CA_FILE), and fails clearly without it", async () => {
    const veil = veilFor(s);
    const flag = await veil(["secret", "ls", "--ca-file", ca.caFile]);
    expect(flag.stderr).toBe("");
    expect(flag.code).toBe(0);
    expect(flag.stdout).toContain("FOR_GRPC_JS");
    expect((await veil(["secret", "ls"], { VEIL_CA_FILE: ca.caFile })).code).toBe(0);
    const without = await veil(["secret", "ls"]);
    expect(without.code).not.toBe(0);
    expect(without.stderr).toMatch(/certificate/i);
    const missing = await veil(["secret", "ls", "--ca-file", `${certs.path}/nope.pem`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--ca-file");
  });

  it("a profile saved by veil login with --ca-file trusts that CA (no flag or variable needed)", async () => {
    const home = `${certs.path}/xdg`;
    const veil = veilFor(s);
    // No VEIL_URL: the profile names the server.
    const env = { XDG_CONFIG_HOME: home, VEIL_URL: "" };
    writeFileSync(`${certs.path}/token`, s.token, { mode: 0o600 });
    const login = await veil(["login", "--url", s.url, "--profile", "tls", "--token-file", `${certs.path}/token`, "--ca-file", ca.caFile], env);
    expect(login).toMatchObject({ code: 0, stderr: expect.stringContaining("profile tls saved") });
    const viaProfile = await veil(["secret", "ls", "--json"], env);
    expect(viaProfile).toMatchObject({ code: 0, stderr: "" });
    // The same server through a profile without the CA is refused on its certificate.
    await veil(["login", "--url", s.url, "--profile", "plain", "--token-file", `${certs.path}/token`], env);
    const untrusted = await veil(["secret", "ls", "--profile", "plain"], env);
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toMatch(/certificate/i);
  });
});

describe("mutual TLS", () => {
  const certs = tempDir();
  let ca: Awaited<ReturnType<typeof testCa>>;
  let s: TestServer;
  let client: { cert: string; key: string };
  let stranger: { cert: string; key: string };
  beforeAll(async () => {
    ca = await testCa(certs.path);
    const other = await testCa(certs.path, "other");
    const leaf = await ca.server();
    const c = await ca.client();
    const x = await other.client("stranger");
    client = { cert: c.certPem, key: c.keyPem };
    stranger = { cert: x.certPem, key: x.keyPem };
    s = await startTestServer({ extraFlags: ["--tls-cert", leaf.certFile, "--tls-key", leaf.keyFile, "--tls-client-ca", ca.caFile] });
    // Kept for the CLI case.
    copyFileSync(c.certFile, `${certs.path}/client.pem`);
    copyFileSync(c.keyFile, `${certs.path}/client-key.pem`);
  });
  afterAll(async () => {
    await s.close();
    certs.cleanup();
  });

  for (const protocol of ["grpc", "connect", "grpc-web"] as const) {
    it(`accepts a client certificate from the CA over ${protocol}`, async () => {
      const veil = await createVeilClient({ baseUrl: s.url, token: s.token, protocol, tls: { ca: ca.certPem, ...client } });
      await veil.secrets.setSecrets({ secrets: [{ name: `MTLS_${protocol.replace("-", "_").toUpperCase()}`, text: CANARY }] });
    });
  }

  it("refuses a certificate from another CA at the handshake: no request is served", async () => {
    for (const protocol of ["grpc", "connect", "grpc-web"] as const) {
      const veil = await createVeilClient({ baseUrl: s.url, token: s.token, protocol, tls: { ca: ca.certPem, ...stranger } });
      // The connection is cut before any HTTP exchange (the client reports it as canceled or unavailable).
      await expect(veil.secrets.listSecrets({})).rejects.toThrow(/canceled|unavailable|socket hang up|ECONNRESET/i);
    }
    await expect(httpsGet(`${s.url}/healthz`, { ca: ca.certPem, ...stranger })).rejects.toThrow();
  });

  it("without a certificate, answers only /healthz and /metrics; every RPC is UNAUTHENTICATED before it runs", async () => {
    // Twice over: a second connection could resume the first's TLS session, which Node reports as authorized.
    for (const protocol of ["grpc", "connect", "grpc-web", "grpc", "connect", "grpc-web"] as const) {
      const veil = await createVeilClient({ baseUrl: s.url, token: s.token, protocol, tls: { ca: ca.certPem } });
      await expectCode(veil.secrets.listSecrets({}), Code.Unauthenticated);
    }
    const anonymous = grpcJsSecrets(s.port, grpc.credentials.createSsl(Buffer.from(ca.certPem)), s.token);
    try {
      await expect(anonymous.list()).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      anonymous.close();
    }
    expect((await httpsGet(`${s.url}/healthz`, { ca: ca.certPem })).status).toBe(200);
    const metrics = await httpsGet(`${s.url}/metrics`, { ca: ca.certPem });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain("veil_rpc_requests_total");
    const other = await httpsGet(`${s.url}/nothing`, { ca: ca.certPem });
    expect(other.status).toBe(401);
    expect(other.body).toContain("client certificate is required");
  });

  it("the CLI takes --cert and --key", async () => {
    const veil = veilFor(s);
    const ok = await veil(["secret", "ls", "--ca-file", ca.caFile, "--cert", `${certs.path}/client.pem`, "--key", `${certs.path}/client-key.pem`]);
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toContain("MTLS_GRPC");
    const half = await veil(["secret", "ls", "--ca-file", ca.caFile, "--cert", `${certs.path}/client.pem`]);
    expect(half.code).toBe(2);
    expect(half.stderr).toContain("--cert and --key");
  });
});

describe("certificate reload on SIGHUP", () => {
  it("serves a new pair to new connections, and keeps the old one when the new pair does not load", async () => {
    const certs = tempDir();
    const data = tempDir();
    const ca = await testCa(certs.path);
    const first = await ca.server();
    const second = await ca.server();
    const certFile = `${certs.path}/served.pem`;
    const keyFile = `${certs.path}/served-key.pem`;
    copyFileSync(first.certFile, certFile);
    copyFileSync(first.keyFile, keyFile);
    const child = await spawnServer(data.path, { VEIL_TLS_CERT: certFile, VEIL_TLS_KEY: keyFile });
    try {
      const port = Number(new URL(child.url).port);
      expect(child.url).toMatch(/^https:/);
      expect((await servedSerial(port)).toLowerCase()).toBe(first.serial);

      copyFileSync(second.certFile, certFile);
      copyFileSync(second.keyFile, keyFile);
      child.proc.kill("SIGHUP");
      await until(() => child.stderr().includes("certificate reloaded"));
      expect((await servedSerial(port)).toLowerCase()).toBe(second.serial);

      // A certificate with another pair's key: refused, the second pair stays.
      copyFileSync(first.certFile, certFile);
      child.proc.kill("SIGHUP");
      await until(() => child.stderr().includes("certificate not reloaded"));
      expect(child.stderr()).toMatch(/"level":"error","msg":"tls: certificate not reloaded/);
      expect((await servedSerial(port)).toLowerCase()).toBe(second.serial);
      const veil = await createVeilClient({ baseUrl: child.url, token: child.token, tls: { ca: ca.certPem } });
      expect((await veil.secrets.listSecrets({})).secrets).toEqual([]);
    } finally {
      expect(await child.stop()).toBe(0);
      certs.cleanup();
      data.cleanup();
    }
  });
});

describe("cleartext off loopback", () => {
  const cases = [
    { host: "0.0.0.0", loopback: false },
    { host: "192.0.2.10", loopback: false },
    { host: "::", loopback: false },
    { host: "127.0.0.1", loopback: true },
    { host: "127.8.9.10", loopback: true },
    { host: "::1", loopback: true },
    { host: "localhost", loopback: true },
  ];
  for (const c of cases) {
    it(`--host ${c.host} without TLS ${c.loopback ? "starts" : "is refused unless --insecure-listen"}`, () => {
      const parse = (extra: string[]) => () => parseServerConfig(["--host", c.host, ...extra], {});
      if (c.loopback) {
        expect(parse([])).not.toThrow();
      } else {
        expect(parse([])).toThrow(ConfigError);
        expect(parse([])).toThrow(/not loopback and TLS is off.*--tls-cert.*--insecure-listen/);
        expect(parse(["--insecure-listen"])).not.toThrow();
      }
    });
  }

  it("veil serve --host 0.0.0.0 exits 2 saying why; with --insecure-listen it starts and warns", async () => {
    const data = tempDir();
    try {
      const refused = spawnSync(process.execPath, [VEIL_BIN, "serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", data.path], {
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "" },
        timeout: 20_000,
      });
      expect(refused.status).toBe(2);
      expect(refused.stderr).toContain("--host 0.0.0.0 is not loopback and TLS is off");
      const s = await startTestServer({ dataDir: data.path, extraFlags: ["--host", "0.0.0.0", "--insecure-listen"] });
      try {
        expect(s.logs.join("")).toMatch(/"level":"warn","msg":"--insecure-listen: serving cleartext on a non-loopback address/);
      } finally {
        await s.server.close({ drainMs: 500 });
      }
    } finally {
      data.cleanup();
    }
  });
});

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
