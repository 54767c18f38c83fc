// The `veil` command line: dispatches to the subcommands and turns failures into exit codes.
import type { Command } from "./command.js";
import { agentCommand } from "./commands/agent.js";
import { auditCommand } from "./commands/audit.js";
import { backupCommand, restoreCommand } from "./commands/backup.js";
import { completionCommand } from "./commands/completion.js";
import { injectCommand } from "./commands/inject.js";
import { keysCommand } from "./commands/keys.js";
import { loginCommand } from "./commands/login.js";
import { mcpCommand } from "./commands/mcp.js";
import { runCommand } from "./commands/run.js";
import { secretCommand } from "./commands/secret.js";
import { serveCommand } from "./commands/serve.js";
import { settingsCommand } from "./commands/settings.js";
import { tokenCommand } from "./commands/token.js";
import { describeFailure, EXIT, UsageError } from "./io.js";
import { veilVersion } from "./version.js";

const commands: Command[] = [
  serveCommand,
  secretCommand,
  tokenCommand,
  runCommand,
  injectCommand,
  agentCommand,
  auditCommand,
  keysCommand,
  mcpCommand,
  settingsCommand,
  backupCommand,
  restoreCommand,
  loginCommand,
];
commands.push(completionCommand(() => commands));

const help = `Usage: veil <command> [options]

Veil keeps secrets for AI agents: stored encrypted, injected into commands, masked in output.

Commands:
${commands.map((c) => `  ${c.name.padEnd(11)} ${c.summary}`).join("\n")}

Run 'veil <command> --help' for details; 'veil --version' prints the version.`;

/** Runs the CLI and resolves to its exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${help}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    process.stdout.write(`${veilVersion()}\n`);
    return EXIT.ok;
  }
  const command = commands.find((c) => c.name === name);
  try {
    if (command === undefined) throw new UsageError(`unknown command '${name}' (try 'veil --help')`);
    const flags = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
    if (!command.isGroup && (flags.includes("--help") || flags.includes("-h"))) {
      process.stdout.write(`${command.help}\n`);
      return EXIT.ok;
    }
    return await command.run(rest);
  } catch (error) {
    const { message, exitCode } = describeFailure(error);
    process.stderr.write(`veil${command ? ` ${command.name}` : ""}: ${message}\n`);
    // `veil run` exits with the command's own code, so its own failures use 125 (as env and docker run do).
    return (error as { runnerFailed?: boolean }).runnerFailed ? EXIT.runnerFailed : exitCode;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("/cli/main.ts")) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
