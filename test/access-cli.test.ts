// The access model from the `veil` CLI and an independent gRPC peer: --reader, --allow-network, readers on the wire.
import { describe, expect, it } from "vitest";
import { grpc, grpcJsClient } from "./support/grpc-js.js";
import { useCliServer } from "./support/cli.js";

const CANARY = "canary-ACCESS-5d20c7b9";

// Each `veil` call is a fresh Node process: allow a minute on a busy two-core machine.
describe("veil CLI: readers and network", () => {
  const { veil, server: child } = useCliServer(CANARY);

  function agentToken(...flags: string[]): { token: string; tokenId: string; allowNetwork: boolean } {
    const created = veil(["token", "create", "--agent", "bot", "--json", ...flags]);
    expect(created.code, created.stderr).toBe(0);
    return JSON.parse(created.stdout) as { token: string; tokenId: string; allowNetwork: boolean };
  }

  it("--reader lets an agent read; ls shows readers; a non-reader's get exits 4 with the server's reason", () => {
    const notInjectable = veil(["secret", "set", "READ_ME", "--agent", "bot", "--reader", "bot", "--reader", "ops"], CANARY);
    expect(notInjectable).toMatchObject({ code: 6, stderr: expect.stringMatching(/agent_readers\[1\]: agent ops is not in allowed_agents/) });
    expect(veil(["secret", "set", "READ_ME", "--agent", "bot", "--agent", "ops", "--reader", "bot", "--reader", "ops"], CANARY).code).toBe(0);
    expect(veil(["secret", "set", "INJECT_ONLY", "--agent", "bot"], CANARY).code).toBe(0);

    const listed = veil(["secret", "ls", "--json"]).stdout.trim().split("\n").map((l) => JSON.parse(l) as { name: string; agentReaders: string[] });
    expect(listed.map((m) => [m.name, m.agentReaders])).toEqual([
      ["INJECT_ONLY", []],
      ["READ_ME", ["bot", "ops"]],
    ]);
    const table = veil(["secret", "ls"]).stdout.split("\n");
    expect(table[0]).toMatch(/^NAME\s+VERSION\s+KIND\s+AGENTS\s+READERS\s+/);
    expect(table.find((l) => l.startsWith("READ_ME"))).toMatch(/\sbot,ops\s+bot,ops\s/);
    expect(table.find((l) => l.startsWith("INJECT_ONLY"))).toMatch(/\sbot\s+-\s/);

    const { token } = agentToken();
    expect(veil(["secret", "get", "READ_ME"], undefined, { VEIL_TOKEN: token })).toMatchObject({ code: 0, stdout: CANARY });
    const denied = veil(["secret", "get", "INJECT_ONLY"], undefined, { VEIL_TOKEN: token });
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/^veil secret: PERMISSION_DENIED: name: agent bot may inject INJECT_ONLY but is not an agent_reader of it/);
    expect(denied.stdout + denied.stderr).not.toContain(CANARY);
  }, 60_000);

  it("--allow-network mints an agent token that may run with --network; ls shows it", () => {
    const plain = agentToken();
    const networked = agentToken("--allow-network");
    expect([plain.allowNetwork, networked.allowNetwork]).toEqual([false, true]);

    const refused = veil(["run", "--network", "--", "true"], undefined, { VEIL_TOKEN: plain.token });
    expect(refused.code).toBe(125);
    expect(refused.stderr).toMatch(/PERMISSION_DENIED: network: agent tokens need a token created with allow_network/);
    expect(veil(["run", "--network", "--", "true"], undefined, { VEIL_TOKEN: networked.token }).code).toBe(0);
    expect(veil(["run", "--network", "--", "true"]).code).toBe(0);

    const rows = veil(["token", "ls", "--json"]).stdout.trim().split("\n").map((l) => JSON.parse(l) as { tokenId: string; allowNetwork: boolean });
    expect(rows.find((r) => r.tokenId === networked.tokenId)?.allowNetwork).toBe(true);
    const table = veil(["token", "ls"]).stdout.split("\n");
    expect(table[0]).toMatch(/^ID\s+ROLE\s+AGENT\s+NETWORK\s+STATE/);
    expect(table.find((l) => l.startsWith(networked.tokenId))).toMatch(/\sbot\s+yes\s+active/);
    expect(table.find((l) => l.startsWith(plain.tokenId))).toMatch(/\sbot\s+no\s+active/);
    expect(veil(["token", "create", "--allow-network"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--allow-network: only for agent tokens/) });
  }, 60_000);

  it("agent_readers round-trips through an independent @grpc/grpc-js peer", async () => {
    const port = Number(new URL(child().url).port);
    const secrets = grpcJsClient(port, "SecretService", child().token);
    const tokens = grpcJsClient(port, "TokenService", child().token);
    try {
      const set = await secrets.unary<{ secrets: { agent_readers: string[] }[] }>("SetSecrets", {
        secrets: [{ name: "WIRE", text: CANARY, allowed_agents: ["bot"], agent_readers: ["bot"] }],
      });
      expect(set.secrets[0]?.agent_readers).toEqual(["bot"]);
      const listed = await secrets.unary<{ secrets: { name: string; agent_readers: string[] }[] }>("ListSecrets", { name_prefix: "WIRE" });
      expect(listed.secrets.map((s) => [s.name, s.agent_readers])).toEqual([["WIRE", ["bot"]]]);
      const agent = await tokens.unary<{ token: string; info: { allow_network: boolean } }>("CreateToken", { role: "ROLE_AGENT", agent: "bot", allow_network: true });
      expect(agent.info.allow_network).toBe(true);
      const asBot = grpcJsClient(port, "SecretService", agent.token);
      try {
        const got = await asBot.unary<{ text: string; meta: { agent_readers: string[] } }>("GetSecret", { name: "WIRE" });
        expect(got).toMatchObject({ text: CANARY, meta: { agent_readers: ["bot"] } });
        const error = (await asBot.unary("GetSecret", { name: "INJECT_ONLY" }).then(() => undefined, (e: unknown) => e)) as grpc.ServiceError;
        expect(error.code).toBe(grpc.status.PERMISSION_DENIED);
        expect(error.details).toMatch(/is not an agent_reader/);
      } finally {
        asBot.close();
      }
    } finally {
      secrets.close();
      tokens.close();
    }
  });
});
