// `veil inject` as a user runs it, like `op inject`: fields, sessions, 0600 files written atomically, nothing written on a refusal.
import { existsSync, lstatSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useCliServer } from "./support/cli.js";
import { tempDir } from "./support/temp-dir.js";

const CANARY = "canary-INJECT-77c0e1b2";

describe("veil inject", () => {
  const { veil } = useCliServer(CANARY);
  const work = tempDir("veil-inject-");
  const template = join(work.path, "config.yml.tpl");

  it("renders expressions and fields to stdout; veil:// and other text is copied as is", () => {
    expect(veil(["secret", "set", "API_KEY"], CANARY).code).toBe(0);
    expect(veil(["secret", "set", "DB", "--fields"], `user=app\npassword=${CANARY}-pw\n`).code).toBe(0);
    expect(veil(["secret", "set", "API_KEY", "--session", "staging"], `${CANARY}-staging`).code).toBe(0);
    writeFileSync(template, "api_key: {{ secrets.API_KEY }}\ndb: {{secrets.DB.user}}:{{  secrets.DB.password }}\nliteral: veil://API_KEY { not: an expression }\n");
    const res = veil(["inject", "-i", template]);
    expect(res).toMatchObject({ code: 0, stderr: "" });
    expect(res.stdout).toBe(`api_key: ${CANARY}\ndb: app:${CANARY}-pw\nliteral: veil://API_KEY { not: an expression }\n`);
    // A session's value wins over the tenant-wide one; a template from stdin works too.
    expect(veil(["inject", "--session", "staging"], "k={{ secrets.API_KEY }}")).toMatchObject({ code: 0, stdout: `k=${CANARY}-staging` });
  });

  it("-o writes the file with mode 0600 through a rename, replacing an old one, leaving no temporary file", () => {
    const out = join(work.path, "config.yml");
    writeFileSync(out, "old contents", { mode: 0o644 });
    expect(veil(["inject", "-i", template, "-o", out])).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(lstatSync(out).mode & 0o777).toBe(0o600);
    expect(readFileSync(out, "utf8")).toContain(`api_key: ${CANARY}\n`);
    expect(readdirSync(work.path).filter((n) => n.includes(".veil-"))).toEqual([]);
  });

  it("a missing or unreadable secret, or bad syntax, writes nothing and names it (never a value)", () => {
    const out = join(work.path, "never.yml");
    writeFileSync(template, "a: {{ secrets.API_KEY }}\nb: {{ secrets.NOPE }}\n");
    expect(veil(["inject", "-i", template, "-o", out])).toMatchObject({ code: 3, stdout: "", stderr: "veil inject: secret NOPE: NOT_FOUND: name: no secret named NOPE\n" });
    expect(existsSync(out)).toBe(false);

    expect(veil(["secret", "set", "BOT_ONLY", "--agent", "bot"], `${CANARY}-bot`).code).toBe(0);
    const bot = JSON.parse(veil(["token", "create", "--agent", "bot", "--json"]).stdout) as { token: string };
    writeFileSync(template, "a: {{ secrets.BOT_ONLY }}\n");
    const denied = veil(["inject", "-i", template, "-o", out], undefined, { VEIL_TOKEN: bot.token });
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/^veil inject: secret BOT_ONLY: PERMISSION_DENIED: .*not an agent_reader/);
    expect(denied.stderr).not.toContain(CANARY);
    expect(existsSync(out)).toBe(false);

    writeFileSync(template, "ok: 1\nbad: {{ secret.API_KEY }}\n");
    const syntax = veil(["inject", "-i", template]);
    expect(syntax).toMatchObject({ code: 6, stdout: "" });
    expect(syntax.stderr).toBe(`veil inject: ${template}: line 2, column 6: unknown expression; an expression must be {{ secrets.NAME }} or {{ secrets.NAME.FIELD }}\n`);
    writeFileSync(template, "x: {{ secrets.DB.User }}\n");
    expect(veil(["inject", "-i", template]).stderr).toBe(`veil inject: ${template}: DB has no field User (field names are case-sensitive; it has password, user)\n`);
    // Seven CLI runs: on two busy cores each can take seconds.
  }, 180_000);

  it("refuses to write through a symbolic link at OUT; usage errors exit 2", () => {
    writeFileSync(template, "a: {{ secrets.API_KEY }}\n");
    const victim = join(work.path, "victim");
    writeFileSync(victim, "untouched");
    const link = join(work.path, "link.yml");
    symlinkSync(victim, link);
    expect(veil(["inject", "-i", template, "-o", link])).toMatchObject({ code: 2, stderr: `veil inject: -o ${link}: is a symbolic link; refusing to write through it\n` });
    expect(readFileSync(victim, "utf8")).toBe("untouched");
    expect(veil(["inject", "-i", join(work.path, "missing.tpl")])).toMatchObject({ code: 2, stderr: expect.stringMatching(/cannot read it \(ENOENT\)/) });
    expect(veil(["inject", "extra"]).code).toBe(2);
    expect(veil(["inject", "--help"])).toMatchObject({ code: 0, stdout: expect.stringContaining("mode 0600") });
  }, 180_000);
});
