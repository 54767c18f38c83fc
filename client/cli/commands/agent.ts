// `veil agent ls|show`: the tenant's agents, and which secrets one agent may use (admin).
import { type Command, group, parse } from "../command.js";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from "../connection.js";
import { EXIT, table, UsageError } from "../io.js";

const SESSION = { session: { type: "string" } } as const;

const ls: Command = {
  name: "ls",
  aliases: ["list"],
  summary: "list the agents known from tokens and grants",
  help: `Usage: veil agent ls [--session S] [--json]

Lists every agent of the tenant: those with agent tokens and those named in a secret's
grants (allowed_agents, agent_readers), with how many active tokens each has.

Options:
  --session S   count grants of this session's secrets too (default: tenant-wide only)
  --json        one JSON object per line
${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(argv, { ...CONNECTION_OPTIONS, ...SESSION, json: { type: "boolean" } }, false);
    const client = await connect(values);
    const { agents } = await client.agents.listAgents({ session: values.session ?? "" });
    if (values.json) {
      for (const a of agents) process.stdout.write(`${JSON.stringify({ name: a.name, activeTokens: a.activeTokens, namedInGrants: a.namedInGrants, allowNetwork: a.allowNetwork })}\n`);
    } else if (agents.length > 0) {
      const rows = agents.map((a) => [a.name, String(a.activeTokens), String(a.namedInGrants), a.allowNetwork ? "yes" : "no"]);
      process.stdout.write(`${table([["AGENT", "ACTIVE TOKENS", "NAMED IN GRANTS", "NETWORK"], ...rows])}\n`);
    }
    return EXIT.ok;
  },
};

const show: Command = {
  name: "show",
  summary: "which secrets an agent may inject and read",
  help: `Usage: veil agent show AGENT [--session S] [--json]

Lists the secrets AGENT may declare in a conversation (in SESSION: its secrets over the
tenant-wide ones), and whether it may also read each value (agent_readers). Never a value.

Options:
  --session S   as a conversation in this session would see them
  --json        one JSON object per line
${CONNECTION_HELP}`,
  async run(argv) {
    const { values, positionals } = parse(argv, { ...CONNECTION_OPTIONS, ...SESSION, json: { type: "boolean" } });
    if (positionals.length !== 1) throw new UsageError("expected one AGENT name (see 'veil agent ls')");
    const client = await connect(values);
    const access = await client.agents.getAgentAccess({ agent: positionals[0]!, session: values.session ?? "" });
    if (values.json) {
      for (const s of access.secrets) process.stdout.write(`${JSON.stringify({ name: s.name, session: s.session, read: s.read, everyAgent: s.everyAgent, description: s.description })}\n`);
    } else if (access.secrets.length > 0) {
      const rows = access.secrets.map((s) => [s.name, s.read ? "inject, read" : "inject", s.everyAgent ? "every agent" : "granted", s.session || "-"]);
      process.stdout.write(`${table([["SECRET", "MAY", "BY", "SESSION"], ...rows])}\n`);
    } else {
      process.stderr.write(`agent ${access.agent} may use no secret${access.activeTokens === 0 ? " (and has no active token)" : ""}\n`);
    }
    return EXIT.ok;
  },
};

export const agentCommand: Command = group("agent", "see the agents and what each may use", [ls, show]);
