// The `veil` CLI as a user runs it: values from stdin, JSON output, exit codes, help, serve's errors.
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildServer, spawnServer, VEIL_BIN } from "./support/child-server.js";
import { cliFor } from "./support/cli.js";
import { tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

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

  const veil = cliFor(() => ({ url: server.url, dataDir: dir.path }));

  it("prints the operator token once on first start", async () => {
    // stdout and stderr are separate pipes: the token may arrive just after the "listening" line.
    await within(5000, async () => expect(server.stdout()).toContain(server.token));
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

  it("runs a command with secrets injected, masked output and the command's exit code", () => {
    expect(veil(["secret", "set", "RUN_KEY"], `${CANARY}-run`).code).toBe(0);
    const res = veil(["run", "--secret", "RUN_KEY", "--", 'echo "out $RUN_KEY"; echo "err $RUN_KEY" >&2; exit 3']);
    expect(res).toMatchObject({ code: 3, stdout: "out <secret-hidden>\n", stderr: "err <secret-hidden>\n" });
    expect(veil(["run", "--secret", "RUN_KEY", "--", "printenv", "RUN_KEY"])).toMatchObject({ code: 0, stdout: "<secret-hidden>\n" });
    expect(veil(["run", "--timeout", "1s", "--", "sleep 5"])).toMatchObject({ code: 124, stderr: expect.stringContaining("timed out") });
    expect(veil(["run", "--secret", "NOPE", "--", "true"])).toMatchObject({ code: 125, stderr: expect.stringMatching(/NOT_FOUND: secrets\[0\]: no secret named NOPE/) });
    expect(veil(["run", "--secret", "RUN_KEY"]).code).toBe(2);
  });

  it("lists audit events, and rotates keys online", () => {
    const audit = veil(["audit", "--secret", "API_KEY", "--json"]);
    expect(audit.code).toBe(0);
    const events = audit.stdout.trim().split("\n").map((l) => JSON.parse(l) as { action: string; outcome: string });
    expect(events.map((e) => e.action)).toEqual(expect.arrayContaining(["secret.set", "secret.get"]));
    expect(audit.stdout).not.toContain(CANARY);
    const rotated = veil(["keys", "rotate", "--json"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ activeGeneration: 2, reencrypting: false, valuesRemaining: 0 });
    expect(veil(["secret", "get", "API_KEY"]).stdout).toBe(CANARY);
    const retired = veil(["keys", "retire"]);
    expect(retired).toMatchObject({ code: 0, stderr: expect.stringMatching(/retired: 1;/) });
  });

  // Twenty-odd fresh Node processes: minutes on a loaded two-core machine, seconds in CI.
  it("has help on every command", () => {
    expect(veil(["--help"]).stdout).toMatch(/Usage: veil <command>/);
    for (const args of [["serve"], ["secret"], ["secret", "set"], ["secret", "ls"], ["secret", "get"], ["secret", "rm"], ["token"], ["token", "create"], ["token", "ls"], ["token", "revoke"], ["run"], ["agent"], ["agent", "ls"], ["agent", "show"], ["mcp"], ["inject"], ["audit"], ["keys"], ["keys", "rotate"], ["keys", "rekey"]]) {
      const res = veil([...args, "--help"]);
      expect(res.code, args.join(" ")).toBe(0);
      expect(res.stdout, args.join(" ")).toMatch(/Usage: veil /);
    }
  }, 180_000);
});

describe("veil keys rekey", () => {
  it("re-wraps a stopped server's keyring: the new key opens the data, the old one is refused", async () => {
    const dir = tempDir();
    const keyFile = `${dir.path}-new.key`;
    try {
      const oldKey = Buffer.alloc(32, 3).toString("base64");
      const newKey = Buffer.alloc(32, 4).toString("base64");
      const first = await spawnServer(dir.path, { VEIL_MASTER_KEY: oldKey });
      const env = { PATH: process.env.PATH ?? "", VEIL_URL: first.url, VEIL_TOKEN: first.token };
      expect(spawnSync(process.execPath, [VEIL_BIN, "secret", "set", "KEPT"], { input: CANARY, env }).status).toBe(0);
      expect(await first.stop()).toBe(0);
      writeFileSync(keyFile, newKey);
      const rekey = spawnSync(process.execPath, [VEIL_BIN, "keys", "rekey", "--data-dir", dir.path, "--new-master-key-file", keyFile], {
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "", VEIL_MASTER_KEY: oldKey },
      });
      expect(rekey.status, rekey.stderr).toBe(0);
      await expect(spawnServer(dir.path, { VEIL_MASTER_KEY: oldKey })).rejects.toThrow(/master key does not match this store/);
      const second = await spawnServer(dir.path, { VEIL_MASTER_KEY: newKey });
      try {
        const got = spawnSync(process.execPath, [VEIL_BIN, "secret", "get", "KEPT"], { encoding: "utf8", env: { ...env, VEIL_URL: second.url } });
        expect(got.stdout).toBe(CANARY);
      } finally {
        await second.stop();
      }
    } finally {
      dir.cleanup();
      rmSync(keyFile, { force: true });
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
