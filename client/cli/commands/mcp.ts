// `veil mcp`: serves the Model Context Protocol on stdio, the way agent hosts launch MCP servers; the tools call the Veil server at --url.
import { createLogger } from "../../../server/log.js";
import { CLIENT_HEADER } from "../../../server/rpc/audit.js";
import { type Command, parse } from "../command.js";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from "../connection.js";
import { EXIT, UsageError } from "../io.js";

const help = `Usage: veil mcp [options]

Serves the Model Context Protocol on stdin/stdout for an agent host (Claude Code,
Cursor, an agent SDK). The agent gets three tools: list_secrets (the names it may
use, never values), run_command (a persistent sandboxed shell with those secrets as
$NAME, output masked) and end_conversation. Use an agent token: its grants decide
what the agent may use.

A bad token or an unreachable server fails at start (exit non-zero, reason on
stderr). stdout carries the protocol only; logs go to stderr as JSON lines.
Closing stdin (or SIGTERM/SIGINT) ends every conversation the session started.

${CONNECTION_HELP}`;

export const mcpCommand: Command = {
  name: "mcp",
  summary: "serve MCP on stdio for agent hosts (secrets by name only)",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, { ...CONNECTION_OPTIONS });
    if (positionals.length > 0) throw new UsageError("veil mcp takes no arguments (see veil mcp --help)");
    const client = await connect(values);
    // Refused here rather than on the first tool call: the host then shows the server as failed, with this reason.
    await client.secrets.listSecrets({ pageSize: 1 }, { headers: { [CLIENT_HEADER]: "mcp" } });

    // Loaded here, not at the top: every other command would otherwise pay for the SDK's import at start.
    const [{ StdioServerTransport }, { createVeilMcpSession }] = await Promise.all([
      import("@modelcontextprotocol/sdk/server/stdio.js"),
      import("../../../server/mcp/tools.js"),
    ]);
    const logger = createLogger();
    const session = createVeilMcpSession({ client, log: (msg, fields) => logger.log("info", msg, fields) });
    const transport = new StdioServerTransport();
    const closed = new Promise<string>((resolve) => {
      process.stdin.once("end", () => resolve("stdin closed"));
      process.stdin.once("close", () => resolve("stdin closed"));
      process.once("SIGTERM", () => resolve("SIGTERM"));
      process.once("SIGINT", () => resolve("SIGINT"));
      transport.onclose = () => resolve("transport closed");
    });
    await session.server.connect(transport);
    logger.log("info", "mcp: serving on stdio", { url: values.url ?? process.env.VEIL_URL ?? "http://127.0.0.1:8080" });
    const reason = await closed;
    await session.close();
    logger.log("info", "mcp: stopped", { reason });
    // Exit now: the client's HTTP/2 session would otherwise keep the process alive.
    process.exit(EXIT.ok);
  },
};
