// The CLI as scripts use it: --version, settings get|set with the key from stdin, --json everywhere, usage errors, --keep-value.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useCliServer } from "./support/cli.js";
import { tempDir } from "./support/temp-dir.js";

const CANARY = "canary-SCRIPT-LLM-7e21c9";

describe("veil CLI for scripts", () => {
  const { veil, server } = useCliServer(CANARY);

  it("prints its version from package.json", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(veil(["--version"])).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  it("sets settings with the API key from stdin and prints them redacted, in a table and as JSON", () => {
    const set = veil(["settings", "set", "--model", "m-2", "--api-key", "--option", "theme=dark", "--json"], `${CANARY}\n`);
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toEqual({ llm: { model: "m-2", baseUrl: null, apiKey: "**********", apiKeyEgressHosts: null }, options: { theme: "dark" } });
    const table = veil(["settings", "get"]);
    expect(table.stdout).toMatch(/^SETTING\s+VALUE\n/);
    expect(table.stdout).toMatch(/llm\.model\s+m-2\n/);
    expect(table.stdout).toMatch(/llm\.api_key\s+\*{10}\n/);
    expect(table.stdout).toMatch(/options\.theme\s+dark/);
    expect(`${set.stdout}${set.stderr}${table.stdout}${table.stderr}`).not.toContain(CANARY);
    expect(veil(["settings", "set"])).toMatchObject({ code: 2, stderr: expect.stringContaining("nothing to set") });
  });

  it("--url that is not a URL is a usage error naming the flag", () => {
    expect(veil(["secret", "ls", "--url", "not a url"])).toMatchObject({ code: 2, stderr: "veil secret: --url: not a URL (expected http://HOST:PORT or https://HOST:PORT)\n" });
    expect(veil(["secret", "ls", "--url", "ftp://x"])).toMatchObject({ code: 2, stderr: expect.stringContaining("--url: must be an http:// or https:// URL") });
  });

  it("answers to list and delete as it does to ls and rm, and lists the aliases in its help", () => {
    expect(veil(["secret", "set", "ALIASED"], "v1\n").code).toBe(0);
    const listed = veil(["secret", "list", "--json"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toBe(veil(["secret", "ls", "--json"]).stdout);
    expect(listed.stdout).toContain('"ALIASED"');
    expect(veil(["secret", "delete", "ALIASED"]).code).toBe(0);
    expect(veil(["secret", "ls", "--json"]).stdout).not.toContain('"ALIASED"');
    expect(veil(["token", "list", "--json"]).code).toBe(0);
    expect(veil(["secret", "--help"]).stdout).toMatch(/ls, list\s+list secret names/);
    expect(veil(["secret", "lsit"])).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'veil secret lsit'") });
  });

  it("--keep-value keeps the description, metadata and grants it is not given", () => {
    expect(veil(["secret", "set", "KEPT", "--description", "the key", "--meta", "owner=ops", "--agent", "coder"], "v1\n").code).toBe(0);
    const kept = veil(["secret", "set", "KEPT", "--keep-value", "--meta", "owner=dev", "--json"]);
    expect(kept.code).toBe(0);
    expect(JSON.parse(kept.stdout)).toMatchObject({ name: "KEPT", version: 2, description: "the key", metadata: { owner: "dev" }, allowedAgents: ["coder"] });
    expect(veil(["secret", "get", "KEPT"]).stdout).toBe("v1");
  });

  it("speaks JSON on every command that prints, with the same role names as its tables", () => {
    const created = JSON.parse(veil(["token", "create", "--agent", "coder", "--json"]).stdout) as { tokenId: string; role: string };
    expect(created.role).toBe("agent");
    const rows = veil(["token", "ls", "--json"]).stdout.trim().split("\n").map((l) => JSON.parse(l) as { tokenId: string; role: string; operator: boolean });
    const table = veil(["token", "ls"]).stdout.split("\n");
    expect(table[0]).toMatch(/^ID\s+ROLE\s+AGENT\s+NETWORK\s+STATE\s+EXPIRES\s+OPERATOR\s+DESCRIPTION$/);
    for (const row of rows) expect(table.find((l) => l.startsWith(row.tokenId))).toMatch(new RegExp(`^${row.tokenId}\\s+${row.role}\\s`));
    expect(rows.find((r) => r.operator)?.role).toBe("admin");
    expect(JSON.parse(veil(["token", "revoke", created.tokenId, "--json"]).stdout)).toEqual({ tokenId: created.tokenId, revoked: true });
    expect(JSON.parse(veil(["secret", "rm", "KEPT", "--json"]).stdout)).toEqual({ name: "KEPT", session: "", deleted: true });
    expect(JSON.parse(veil(["keys", "status", "--json"]).stdout)).toMatchObject({ activeGeneration: 1 });
    expect(JSON.parse(veil(["keys", "retire", "--json"]).stdout)).toMatchObject({ retired: [] });
  });

  it("veil login saves a 0600 profile (token in its own 0600 file) that later commands use without flags", () => {
    const home = tempDir();
    try {
      // No VEIL_URL, no data dir: only the profile says where and with which token.
      const env = { XDG_CONFIG_HOME: home.path, VEIL_URL: "", VEIL_DATA_DIR: join(home.path, "none") };
      expect(veil(["secret", "ls"], undefined, env).code).toBe(2);
      const login = veil(["login", "--url", server().url, "--profile", "ci", "--json"], `${server().token}\n`, env);
      expect(login.code).toBe(0);
      const saved = JSON.parse(login.stdout) as { tokenFile: string };
      const config = join(home.path, "veil", "config.json");
      expect(statSync(config).mode & 0o777).toBe(0o600);
      expect(statSync(saved.tokenFile).mode & 0o777).toBe(0o600);
      expect(readFileSync(config, "utf8")).not.toContain(server().token);
      expect(JSON.parse(readFileSync(config, "utf8"))).toMatchObject({ current: "ci", profiles: { ci: { url: server().url, tokenFile: saved.tokenFile } } });
      expect(veil(["secret", "ls", "--json"], undefined, env).code).toBe(0);
      expect(veil(["secret", "ls", "--profile", "nope"], undefined, env)).toMatchObject({ code: 2, stderr: expect.stringContaining("--profile: no profile 'nope' (known: ci)") });
      expect(JSON.parse(veil(["login", "--list", "--json"], undefined, env).stdout)).toMatchObject({ name: "ci", current: true });
      expect(veil(["login", "--url", "nope"], "x\n", env).code).toBe(2);
    } finally {
      home.cleanup();
    }
  });

  it("prints bash and zsh completion scripts that complete commands, subcommands and flags", () => {
    const script = veil(["completion", "bash"]);
    expect(script.code).toBe(0);
    const complete = (words: string[]) =>
      spawnSync("bash", ["-c", `${script.stdout}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _veil; echo "\${COMPREPLY[*]}"`], { encoding: "utf8" }).stdout.trim();
    expect(complete(["veil", "ba"])).toBe("backup");
    expect(complete(["veil", "secret", "s"])).toBe("set");
    expect(complete(["veil", "secret", "set", "--keep"])).toBe("--keep-value");
    const zsh = veil(["completion", "zsh"]);
    expect(zsh.stdout).toMatch(/^#compdef veil\n/);
    expect(zsh.stdout).toContain("bashcompinit");
    if (existsSync("/usr/bin/zsh")) expect(spawnSync("zsh", ["-n", "-c", zsh.stdout]).status).toBe(0);
    expect(veil(["completion", "fish"]).code).toBe(2);
  });
});
