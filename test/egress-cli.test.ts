// The egress flags of the `veil` CLI: --egress-host/--egress-body on secrets, --network egress|host and --egress-allow on run.
import { describe, expect, it } from "vitest";
import { useCliServer } from "./support/cli.js";

const CANARY = "sk-canary-EGCLI-0123456789abcdefghij";

// Each `veil` call is a fresh Node process: allow a minute on a busy two-core machine.
describe("veil CLI: egress hosts", () => {
  const { veil } = useCliServer(CANARY);

  it("set --egress-host stores the hosts; ls shows them; run gets a placeholder and names it on stderr", () => {
    const set = veil(["secret", "set", "OPENAI_API_KEY", "--egress-host", "api.openai.com", "--egress-host", "*.OpenAI.com", "--egress-body"], CANARY);
    expect(set.code, set.stderr).toBe(0);
    expect(veil(["secret", "set", "BAD", "--egress-host", "https://x.com"], "v")).toMatchObject({
      code: 6,
      stderr: expect.stringMatching(/egress_hosts\[0\]: must be a host, host:port or \*\.domain/),
    });

    const listed = JSON.parse(veil(["secret", "ls", "--json"]).stdout.trim()) as { egressHosts: string[]; egressBody: boolean };
    expect(listed).toMatchObject({ egressHosts: ["*.openai.com", "api.openai.com"], egressBody: true });
    const table = veil(["secret", "ls"]).stdout.split("\n");
    expect(table[0]).toMatch(/\sEGRESS\s/);
    expect(table.find((l) => l.startsWith("OPENAI_API_KEY"))).toContain("*.openai.com,api.openai.com (body)");

    const agent = JSON.parse(veil(["token", "create", "--agent", "bot", "--json"]).stdout) as { token: string };
    const run = veil(["run", "--network", "egress", "--egress-allow", "pypi.org", "--secret", "OPENAI_API_KEY", "--", "printenv OPENAI_API_KEY"], undefined, {
      VEIL_TOKEN: agent.token,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toMatch(/^veil_ph_[A-Za-z0-9_]+$/);
    expect(run.stdout.trim()).toHaveLength(CANARY.length);
    expect(run.stderr).toContain("veil run: placeholders (values only via the egress gateway): OPENAI_API_KEY");
    expect(run.stdout + run.stderr).not.toContain(CANARY);

    // --network host is the old bare --network: unrestricted, refused to a plain agent token.
    expect(veil(["run", "--network", "host", "--", "true"], undefined, { VEIL_TOKEN: agent.token }).stderr).toMatch(/PERMISSION_DENIED: network:/);
    expect(veil(["run", "--network=host", "--", "true"]).code).toBe(0);
    expect(veil(["run", "--egress-allow", "pypi.org", "--", "true"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--egress-allow: only with --network egress/) });
    expect(veil(["run", "--network=sideways", "--", "true"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--network: must be none, egress or host/) });
  }, 90_000);
});
