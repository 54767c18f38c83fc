// The CLI as scripts use it: --version, settings get|set with the key from stdin, --json everywhere, usage errors, --keep-value.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { useCliServer } from "./support/cli.js";

const CANARY = "canary-SCRIPT-LLM-7e21c9";

describe("veil CLI for scripts", () => {
  const { veil } = useCliServer(CANARY);

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
});
