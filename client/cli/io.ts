// CLI plumbing: exit codes, error printing, reading values from stdin or a no-echo prompt.
import { Code, ConnectError } from "@connectrpc/connect";

/** Exit codes scripts can rely on. `veil run` exits with the command's own code instead. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  denied: 4,
  conflict: 5,
  invalid: 6,
  unavailable: 7,
  /** `veil run` could not run the command at all (like `env`/`docker run`). */
  runnerFailed: 125,
} as const;

/** A mistake in how the CLI was called: printed with the usage hint, exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A failure the CLI found itself, with its exit code (a secret it could not read, bad template syntax). */
export class CliFailure extends Error {
  override readonly name = "CliFailure";
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Maps a failure to a one-line message and an exit code. */
export function describeFailure(error: unknown): { message: string; exitCode: number } {
  if (error instanceof CliFailure) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof UsageError || (error instanceof Error && error.name === "ConfigError")) return { message: error.message, exitCode: EXIT.usage };
  if (error instanceof Error && error.name === "VeilError") return { message: error.message, exitCode: EXIT.failure };
  if (error instanceof ConnectError) {
    const exitCode =
      {
        [Code.NotFound]: EXIT.notFound,
        [Code.PermissionDenied]: EXIT.denied,
        [Code.Unauthenticated]: EXIT.denied,
        [Code.Aborted]: EXIT.conflict,
        [Code.InvalidArgument]: EXIT.invalid,
        [Code.Unavailable]: EXIT.unavailable,
      }[error.code as number] ?? EXIT.failure;
    const hint = error.code === Code.Unavailable && !error.rawMessage.startsWith("server shutting down") ? " (is `veil serve` running? see --url)" : "";
    return { message: `${codeName(error.code)}: ${error.rawMessage}${hint}`, exitCode };
  }
  return { message: error instanceof Error ? error.message : String(error), exitCode: EXIT.failure };
}

/** gRPC's spelling of a code: NOT_FOUND rather than NotFound. */
export function codeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Reads all of stdin (the value of `secret set`). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Prompts on the terminal without echoing what is typed. */
export async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  let value = "";
  try {
    for await (const chunk of stdin) {
      for (const char of (chunk as Buffer).toString("utf8")) {
        if (char === "\r" || char === "\n") return value;
        if (char === "\u0003") throw new UsageError("cancelled");
        if (char === "\u007f") value = value.slice(0, -1);
        else value += char;
      }
    }
    return value;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write("\n");
  }
}

/** The value of `secret set`: stdin when piped, else a hidden prompt; one trailing newline is dropped. */
export async function readSecretValue(name: string): Promise<string> {
  if (process.stdin.isTTY) return promptHidden(`Value for ${name} (input hidden): `);
  return (await readStdin()).replace(/\r?\n$/, "");
}

/** Prints aligned columns. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}
