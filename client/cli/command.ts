// The shape of a CLI command and the argument parser they share.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./io.js";

/** One `veil` subcommand (or subcommand group). */
export interface Command {
  name: string;
  summary: string;
  help: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
  /** Groups answer --help for their subcommands themselves. */
  isGroup?: boolean;
  /** A group's subcommands (for shell completion). */
  commands?: Command[];
  /** Other names a group answers to for this subcommand (`list` for `ls`): what people type first. */
  aliases?: readonly string[];
}

/** parseArgs that turns its errors into usage errors. */
export function parse<T extends ParseArgsConfig["options"]>(argv: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split("\n")[0] ?? "bad arguments");
  }
}

/** Parses `key=value` pairs (repeated flags or lines). */
export function keyValues(items: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    if (item.trim() === "") continue;
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${what}: expected key=value, got a line without '='`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1);
  }
  return out;
}

/** Parses durations such as 90, 90s, 15m, 1h, 7d into seconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (match === null) throw new UsageError(`${flag}: expected a duration such as 90s, 15m, 1h or 7d`);
  return Number(match[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as "" | "s" | "m" | "h" | "d"];
}

/** Dispatches a command group (`veil secret set|ls|...`). */
export function group(name: string, summary: string, commands: Command[]): Command {
  const help = `Usage: veil ${name} <command> [options]\n\n${summary[0]!.toUpperCase()}${summary.slice(1)}.\n\nCommands:\n${commands
    .map((c) => `  ${[c.name, ...(c.aliases ?? [])].join(", ").padEnd(12)} ${c.summary}`)
    .join("\n")}\n\nRun 'veil ${name} <command> --help' for its options.`;
  return {
    name,
    summary,
    help,
    isGroup: true,
    commands,
    async run(argv) {
      const [sub, ...rest] = argv;
      if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
        process.stdout.write(`${help}\n`);
        return sub === undefined ? 2 : 0;
      }
      const command = commands.find((c) => c.name === sub || c.aliases?.includes(sub) === true);
      if (command === undefined) throw new UsageError(`unknown command 'veil ${name} ${sub}' (try 'veil ${name} --help')`);
      const flags = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
      if (flags.includes("--help") || flags.includes("-h")) {
        process.stdout.write(`${command.help}\n`);
        return 0;
      }
      return command.run(rest);
    },
  };
}
