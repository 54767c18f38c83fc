// The operator token: who may revoke it, and its offline reset with the master key.
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Role } from "../client/index.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { spawnServer, VEIL_BIN } from "./support/child-server.js";
import { expectCode } from "./support/expect-code.js";
import { tempDir } from "./support/temp-dir.js";

const CANARY = "canary-OPERATOR-0c4e19aa";

describe("revoking the operator token", () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  const operatorId = async () => (await t.admin.tokens.listTokens({})).tokens.find((x) => x.operator)!.tokenId;

  it("a tenant admin of default cannot lock the operator out", async () => {
    const admin = t.as((await t.admin.tokens.createToken({ role: Role.ADMIN })).token);
    const id = await operatorId();
    await expectCode(admin.tokens.revokeToken({ tokenId: id }), Code.PermissionDenied, /is the operator token; only an operator token revokes it/);
    await t.admin.secrets.listSecrets({});
    // Another tenant's admin does not even find it.
    const acme = t.as((await t.admin.tokens.createToken({ tenant: "acme", role: Role.ADMIN })).token);
    await expectCode(acme.tokens.revokeToken({ tokenId: id }), Code.NotFound);
  });

  it("the operator revokes itself: from the next call on it is UNAUTHENTICATED; other tokens keep working", async () => {
    const admin = t.as((await t.admin.tokens.createToken({ role: Role.ADMIN })).token);
    await t.admin.tokens.revokeToken({ tokenId: await operatorId() });
    await expectCode(t.admin.secrets.listSecrets({}), Code.Unauthenticated, /revoked/);
    const listed = (await admin.tokens.listTokens({})).tokens.find((x) => x.operator);
    expect(listed?.revoked).toBe(true);
  });
});

describe("veil token reset-operator", () => {
  const run = (args: string[], env: Record<string, string> = {}) => {
    const res = spawnSync(process.execPath, [VEIL_BIN, ...args], { encoding: "utf8", env: { PATH: process.env.PATH ?? "", ...env } });
    return { code: res.status, stdout: res.stdout, stderr: res.stderr };
  };

  it(
    "needs a stopped server and the matching master key; the new token works, the old one is revoked",
    async () => {
      const dir = tempDir();
      try {
        // The embedded master key (<data-dir>/master.key), as the quick start leaves it.
        const first = await spawnServer(dir.path, { VEIL_MASTER_KEY: "" });
        const client = { PATH: process.env.PATH ?? "", VEIL_URL: first.url, VEIL_TOKEN: first.token };
        expect(spawnSync(process.execPath, [VEIL_BIN, "secret", "set", "KEPT"], { input: CANARY, env: client }).status).toBe(0);
        const other = spawnSync(process.execPath, [VEIL_BIN, "token", "create"], { encoding: "utf8", env: client }).stdout.trim();

        const busy = run(["token", "reset-operator", "--data-dir", dir.path]);
        expect(busy.code).toBe(2);
        expect(busy.stderr).toContain(`is in use by pid ${first.proc.pid}: stop the server first`);
        expect(await first.stop()).toBe(0);

        const wrongKey = run(["token", "reset-operator", "--data-dir", dir.path], { VEIL_MASTER_KEY: Buffer.alloc(32, 9).toString("base64") });
        expect(wrongKey.code).not.toBe(0);
        expect(wrongKey.stderr).toMatch(/master key does not match this store/);
        expect(wrongKey.stdout).toBe("");
        expect(readFileSync(join(dir.path, "admin.token"), "utf8").trim()).toBe(first.token);
        expect(run(["token", "reset-operator", "--data-dir", `${dir.path}/nowhere`]).stderr).toMatch(/holds no Veil data/);

        const reset = run(["token", "reset-operator", "--data-dir", dir.path]);
        expect(reset.code, reset.stderr).toBe(0);
        const fresh = reset.stdout.trim();
        expect(fresh).toMatch(/^veil_/);
        expect(fresh).not.toBe(first.token);
        expect(reset.stderr).toMatch(/^operator token tok_[0-9a-f]{16} written to .*admin\.token \(shown once\); revoked: tok_[0-9a-f]{16}\n$/);
        expect(readFileSync(join(dir.path, "admin.token"), "utf8")).toBe(`${fresh}\n`);
        expect(statSync(join(dir.path, "admin.token")).mode & 0o777).toBe(0o600);

        const second = await spawnServer(dir.path, { VEIL_MASTER_KEY: "" });
        try {
          const as = (token: string, args: string[]) =>
            spawnSync(process.execPath, [VEIL_BIN, ...args], { encoding: "utf8", env: { ...client, VEIL_URL: second.url, VEIL_TOKEN: token } });
          expect(second.token).toBe(fresh);
          expect(as(fresh, ["secret", "get", "KEPT"]).stdout).toBe(CANARY);
          const old = as(first.token, ["secret", "ls"]);
          expect(old.status).toBe(4);
          expect(old.stderr).toMatch(/UNAUTHENTICATED: authorization: token revoked/);
          // Only operator tokens were revoked; the new one is the operator (mints for any tenant).
          expect(as(other, ["secret", "ls"]).status).toBe(0);
          expect(as(fresh, ["token", "create", "--tenant", "acme"]).status).toBe(0);
          const audit = as(fresh, ["audit", "--action", "token.reset", "--json"]);
          expect(audit.stdout).toMatch(/token\.reset/);
        } finally {
          await second.stop();
        }
        expect(second.stdout()).not.toContain(fresh);
      } finally {
        dir.cleanup();
      }
    },
    90_000,
  );
});
