// `veil secret set NAME --lookup URL ...` as a user runs it, against a real server and a local upstream.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildServer, spawnServer, VEIL_BIN } from "./support/child-server.js";
import type { CliResult } from "./support/cli.js";
import { type LookupUpstream, startLookupUpstream } from "./support/lookup-upstream.js";
import { tempDir } from "./support/temp-dir.js";

const FETCHED = "lk-canary-CLI-8f2e4d6c";
const BOOT = "hdr-canary-CLI-1a3c5e7f";

describe("veil secret set --lookup", () => {
  const dir = tempDir();
  let server: ChildServer;
  let up: LookupUpstream;
  beforeAll(async () => {
    up = await startLookupUpstream(FETCHED, BOOT);
    // The upstream is on loopback: allowed explicitly.
    server = await spawnServer(dir.path, { VEIL_ALLOW_PRIVATE_LOOKUPS: "true" });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    expect(server.stderr()).not.toMatch(/lk-canary|hdr-canary/);
    await up.close();
    dir.cleanup();
  });
  /** `veil ARGS` without blocking: the upstream answers from this process meanwhile. */
  const veil = (args: string[], input = ""): Promise<CliResult> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [VEIL_BIN, ...args], { env: { PATH: process.env.PATH ?? "", VEIL_URL: server.url, VEIL_DATA_DIR: dir.path } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("close", (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input);
    });

  it("stores a lookup with a header expression, pointer and TTL; get fetches once and serves the cache", async () => {
    expect((await veil(["secret", "set", "BOOT"], BOOT)).code).toBe(0);
    const url = `${up.origin}/token`;
    const set = await veil(["secret", "set", "API_TOKEN", "--lookup", url, "--header", "Authorization: Bearer {{ secrets.BOOT }}", "--json-pointer", "/token", "--ttl", "5m", "--timeout", "2s", "--json"]);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ name: "API_TOKEN", kind: "lookup", lookup: { method: "GET", origin: up.origin, jsonPointer: "/token", ttlSeconds: 300, timeoutMs: 2000 } });
    expect(up.count("/token")).toBe(0);
    expect((await veil(["secret", "get", "API_TOKEN"])).stdout).toBe(FETCHED);
    expect((await veil(["secret", "get", "API_TOKEN"])).stdout).toBe(FETCHED);
    expect(up.count("/token")).toBe(1);
    expect(up.seen.at(-1)?.authorization).toBe(`Bearer ${BOOT}`);
    expect((await veil(["secret", "ls"])).stdout).toMatch(/API_TOKEN\s+1\s+lookup/);
  });

  it("says what is wrong: a failed lookup, lookup options without --lookup, a header without ':'", async () => {
    expect((await veil(["secret", "set", "BROKEN", "--lookup", `${up.origin}/fail`, "--method", "post"])).code).toBe(0);
    expect(await veil(["secret", "get", "BROKEN"])).toMatchObject({ code: 1, stderr: "veil secret: FAILED_PRECONDITION: name: lookup for BROKEN failed: HTTP 500\n" });
    expect(up.seen.at(-1)?.method).toBe("POST");
    expect(await veil(["secret", "set", "X", "--ttl", "5m"], "v")).toMatchObject({ code: 2, stderr: expect.stringContaining("--ttl: only with --lookup URL") });
    const noColon = await veil(["secret", "set", "X", "--lookup", up.origin, "--header", "Bearer-secretish"]);
    expect(noColon.code).toBe(2);
    expect(noColon.stderr).not.toContain("secretish");
  });
});
