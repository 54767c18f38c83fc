// Backup and restore as an operator runs them: `veil backup` from a live server, `veil restore` offline, a server on the copy.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVeilClient, Role, type VeilClient } from "../client/index.js";
import { type ChildServer, spawnServer } from "./support/child-server.js";
import { cliFor } from "./support/cli.js";
import { tempDir } from "./support/temp-dir.js";

const CANARY = "canary-BACKUP-5d1e77";
const OTHER_KEY = Buffer.alloc(32, 9).toString("base64");

/** The values the backed-up server holds, and how to read each back. */
async function seed(admin: VeilClient) {
  await admin.secrets.setSecrets({ secrets: [{ name: "API_KEY", text: `${CANARY}-v1` }] });
  await admin.secrets.setSecrets({ secrets: [{ name: "API_KEY", text: `${CANARY}-v2`, description: "the key", metadata: { owner: "ops" }, agentReaders: ["coder"] }] });
  await admin.secrets.setSecrets({ secrets: [{ name: "DB", fields: { user: "app", password: `${CANARY}-db` } }] });
  await admin.secrets.setSecrets({ session: "s1", secrets: [{ name: "API_KEY", text: `${CANARY}-session` }] });
  await admin.settings.updateSettings({ settings: { llm: { model: "m-1", baseUrl: "https://llm.example", apiKey: `${CANARY}-llm` }, options: { theme: "dark" } } });
  const agent = await admin.tokens.createToken({ role: Role.AGENT, agent: "coder" });
  const other = await admin.tokens.createToken({ tenant: "acme", role: Role.ADMIN });
  return { agentToken: agent.token, otherAdminToken: other.token };
}

describe("veil backup and veil restore", () => {
  const source = tempDir();
  const work = tempDir();
  let server: ChildServer;
  let admin: VeilClient;
  let tokens: Awaited<ReturnType<typeof seed>>;
  const file = join(work.path, "veil.backup");
  const restored = join(work.path, "restored");
  beforeAll(async () => {
    server = await spawnServer(source.path);
    admin = await createVeilClient({ baseUrl: server.url, token: server.token });
    tokens = await seed(admin);
  });
  afterAll(async () => {
    await server?.stop();
    expect(server.stderr()).not.toContain(CANARY);
    source.cleanup();
    work.cleanup();
  });
  const veil = cliFor(() => ({ url: server.url, dataDir: source.path }));

  it("writes a 0600 file with a header and checksum from the running server, and no plaintext", () => {
    const res = veil(["backup", "--out", file, "--json"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout) as { entries: number; layout: number; bytes: number };
    expect(summary).toMatchObject({ file, layout: 2 });
    expect(summary.entries).toBeGreaterThan(10);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const bytes = readFileSync(file);
    expect(bytes.length).toBe(summary.bytes);
    expect(bytes.subarray(0, 12).toString()).toBe("veil-backup\n");
    expect(bytes.subarray(-72).toString()).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(bytes.includes(CANARY)).toBe(false);
    expect(bytes.includes(server.token)).toBe(false);
  });

  it("refuses a backup to an agent token and to another tenant's admin, writing nothing", () => {
    for (const token of [tokens.agentToken, tokens.otherAdminToken]) {
      const out = join(work.path, "denied.backup");
      const res = veil(["backup", "--out", out, "--token", token]);
      expect(res.code).toBe(4);
      expect(res.stderr).toContain("PERMISSION_DENIED: backup: only the operator token");
      expect(existsSync(out)).toBe(false);
    }
  });

  it("refuses a non-empty dir, and a corrupted file, restoring nothing", () => {
    const full = join(work.path, "full");
    mkdirSync(full);
    writeFileSync(join(full, "keep"), "x");
    const refused = veil(["restore", file, "--data-dir", full]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("is not empty; restore into an absent or empty dir");

    const corrupt = join(work.path, "corrupt.backup");
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(corrupt, bytes);
    const bad = veil(["restore", corrupt, "--data-dir", join(work.path, "never")]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("checksum mismatch");
    expect(existsSync(join(work.path, "never"))).toBe(false);
  });

  it("restores offline; a server on it with another master key refuses to start", async () => {
    const res = veil(["restore", file, "--data-dir", restored]);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain("reset-operator");
    expect(statSync(restored).mode & 0o777).toBe(0o700);
    expect(existsSync(join(restored, "admin.token"))).toBe(false);
    await expect(spawnServer(restored, { VEIL_MASTER_KEY: OTHER_KEY })).rejects.toThrow(/master key does not match this store/);
  });

  it("serves every value, version, session, setting, token and audit event back with the same key", async () => {
    // The user copies the old admin.token (the operator token keeps working).
    copyFileSync(join(source.path, "admin.token"), join(restored, "admin.token"));
    chmodSync(join(restored, "admin.token"), 0o600);
    const copy = await spawnServer(restored);
    try {
      expect(copy.stdout()).not.toContain("Operator token");
      const c = await createVeilClient({ baseUrl: copy.url, token: server.token });
      expect((await c.secrets.getSecret({ name: "API_KEY" })).text).toBe(`${CANARY}-v2`);
      expect((await c.secrets.getSecret({ name: "API_KEY", version: 1n })).text).toBe(`${CANARY}-v1`);
      const meta = (await c.secrets.getSecret({ name: "API_KEY" })).meta;
      expect(meta).toMatchObject({ version: 2n, description: "the key", metadata: { owner: "ops" } });
      expect((await c.secrets.getSecret({ name: "DB" })).fields).toEqual({ user: "app", password: `${CANARY}-db` });
      expect((await c.secrets.getSecret({ session: "s1", name: "API_KEY" })).text).toBe(`${CANARY}-session`);
      expect((await c.settings.getSettings({})).settings).toMatchObject({ llm: { model: "m-1", baseUrl: "https://llm.example", apiKey: "**********" }, options: { theme: "dark" } });
      const agent = await createVeilClient({ baseUrl: copy.url, token: tokens.agentToken });
      expect((await agent.secrets.getSecret({ name: "API_KEY" })).text).toBe(`${CANARY}-v2`);
      const actions = (await c.audit.listAuditEvents({ pageSize: 1000 })).events.map((e) => e.action);
      expect(actions).toEqual(expect.arrayContaining(["secret.set", "token.create", "settings.update", "backup.create"]));
      expect(await copy.stop()).toBe(0);
    } finally {
      await copy.stop();
    }
  });
});
