// The `veil` CLI as a user runs it: values from stdin, JSON output, exit codes, help, serve's errors.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildServer, spawnServer, VEIL_BIN } from "./support/child-server.js";
import { tempDir } from "./support/temp-dir.js";

const CANARY = "canary-CLI-b81d44e0";

describe("veil CLI", () => {
  const dir = tempDir();
  let server: ChildServer;
  beforeAll(async () => {
    server = await spawnServer(dir.path);
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    expect(server.stderr()).toContain('"msg":"stopped"');
    expect(server.stderr()).not.toContain(CANARY);
    dir.cleanup();
  });

  /** Runs `veil ...` against the test server; VEIL_DATA_DIR finds the admin token file. */
  function veil(args: string[], input?: string, env: Record<string, string> = {}) {
    const res = spawnSync(process.execPath, [VEIL_BIN, ...args], {
      input,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", VEIL_URL: server.url, VEIL_DATA_DIR: dir.path, ...env },
    });
    return { code: res.status, stdout: res.stdout, stderr: res.stderr };
  }

  it("prints the operator token once on first start", () => {
    expect(server.stdout()).toContain(server.token);
  });

  it("sets a value from stdin and reads it back; the value never appears in argv", () => {
    const set = veil(["secret", "set", "API_KEY", "--description", "test key", "--meta", "owner=ci"], `${CANARY}\n`);
    expect(set).toMatchObject({ code: 0, stderr: "API_KEY: version 1\n" });
    expect(veil(["secret", "get", "API_KEY"]).stdout).toBe(CANARY);
    const listed = veil(["secret", "ls", "--json"]);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout.trim())).toMatchObject({ name: "API_KEY", version: 1, kind: "text", description: "test key", metadata: { owner: "ci" } });
    expect(listed.stdout).not.toContain(CANARY);
    expect(veil(["secret", "ls"]).stdout).toMatch(/^NAME\s+VERSION\s+KIND/);
  });

  it("stores grouped credentials with --fields", () => {
    expect(veil(["secret", "set", "DB", "--fields"], "user=app\npassword=p=w\n").code).toBe(0);
    expect(veil(["secret", "get", "DB"]).stdout).toBe("password=p=w\nuser=app\n");
    expect(JSON.parse(veil(["secret", "get", "DB", "--json"]).stdout).fields).toEqual({ user: "app", password: "p=w" });
  });

  it("exits with codes scripts can trust", () => {
    expect(veil(["secret", "get", "MISSING"])).toMatchObject({ code: 3, stderr: "veil secret: NOT_FOUND: name: no secret named MISSING\n" });
    expect(veil(["secret", "get", "bad-name"]).code).toBe(6);
    expect(veil(["secret", "set", "API_KEY", "--expected-version", "0"], "x").code).toBe(5);
    expect(veil(["secret", "ls"], undefined, { VEIL_TOKEN: "veil_nope" }).code).toBe(4);
    expect(veil(["secret", "frobnicate"])).toMatchObject({ code: 2 });
    expect(veil(["secret", "get"]).code).toBe(2);
    expect(veil(["secret", "ls"], undefined, { VEIL_URL: "http://127.0.0.1:9" }).stderr).toMatch(/UNAVAILABLE.*is `veil serve` running/);
  });

  it("deletes a secret", () => {
    expect(veil(["secret", "set", "TEMP"], "x").code).toBe(0);
    expect(veil(["secret", "rm", "TEMP"]).code).toBe(0);
    expect(veil(["secret", "rm", "TEMP"]).code).toBe(3);
  });

  it("creates, lists and revokes agent tokens with a TTL", () => {
    const created = veil(["token", "create", "--agent", "bot", "--ttl", "1h", "--json"]);
    expect(created.code).toBe(0);
    const info = JSON.parse(created.stdout) as { token: string; tokenId: string; role: string; expiresAt: string };
    expect(info.role).toBe("agent");
    expect(Date.parse(info.expiresAt) - Date.now()).toBeGreaterThan(3500_000);
    expect(veil(["secret", "ls"], undefined, { VEIL_TOKEN: info.token }).code).toBe(0);
    expect(veil(["secret", "set", "X"], "y", { VEIL_TOKEN: info.token }).code).toBe(4);
    expect(veil(["token", "ls"]).stdout).toContain(info.tokenId);
    expect(veil(["token", "revoke", info.tokenId]).code).toBe(0);
    expect(veil(["secret", "ls"], undefined, { VEIL_TOKEN: info.token }).code).toBe(4);
    expect(veil(["token", "create", "--ttl", "soon"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--ttl: expected a duration/) });
  });

  it("has help on every command", () => {
    expect(veil(["--help"]).stdout).toMatch(/Usage: veil <command>/);
    for (const args of [["serve"], ["secret"], ["secret", "set"], ["secret", "ls"], ["secret", "get"], ["secret", "rm"], ["token"], ["token", "create"], ["token", "ls"], ["token", "revoke"]]) {
      const res = veil([...args, "--help"]);
      expect(res.code, args.join(" ")).toBe(0);
      expect(res.stdout, args.join(" ")).toMatch(/Usage: veil /);
    }
  });
});

describe("veil serve configuration errors", () => {
  it.each([
    [["--port", "http"], /^veil serve: --port \(or VEIL_PORT\): .*\n$/],
    [["--port", "70000"], /must be at most 65535/],
    [["--sandbox", "maybe"], /--sandbox \(or VEIL_SANDBOX\): must be auto, required or off/],
    [["--bogus"], /Unknown option '--bogus'/],
  ])("%j is a one-line error with exit code 2", (args, message) => {
    const dir = tempDir();
    const res = spawnSync(process.execPath, [VEIL_BIN, "serve", "--data-dir", dir.path, ...args], { encoding: "utf8", env: { PATH: process.env.PATH ?? "" } });
    dir.cleanup();
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("refuses a malformed VEIL_MASTER_KEY with exit code 2", () => {
    const dir = tempDir();
    const res = spawnSync(process.execPath, [VEIL_BIN, "serve", "--data-dir", dir.path, "--port", "0"], { encoding: "utf8", env: { PATH: process.env.PATH ?? "", VEIL_MASTER_KEY: "short" } });
    dir.cleanup();
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/VEIL_MASTER_KEY: must be base64 of exactly 32 bytes/);
  });
});
