// Runs a command on the caller's machine (`veil run --local`): extra env, masked stdout/stderr, signals forwarded, its exit code.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { Readable, Writable } from "node:stream";
import type { MaskSet } from "../../server/domain/masker.js";

/** What to run and how. */
export interface LocalRun {
  argv: readonly string[];
  /** The caller's environment plus the resolved variables. */
  env: NodeJS.ProcessEnv;
  /** undefined: --no-masking (the child inherits stdout/stderr, a TTY included). */
  masks: MaskSet | undefined;
  /** Where Veil's own notes go (the CLI's stderr). */
  note(text: string): void;
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** Exit code of a process that ended: its own code, or 128 + the signal that killed it (130 for SIGINT, 143 for SIGTERM). */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal !== null) return 128 + (constants.signals[signal] ?? 0);
  return code ?? 1;
}

/**
 * Copies a child's pipe to `target` through one streaming masker, honouring backpressure. The
 * masker fails closed: if it throws, nothing more of that stream is written (the bytes were
 * never checked), the pipe is still drained so the child does not block, and a note says so.
 */
function pump(source: Readable, target: Writable, masks: MaskSet, note: (text: string) => void, label: string): Promise<void> {
  const masker = masks.stream();
  let broken = false;
  const write = (bytes: Uint8Array) => {
    if (bytes.length === 0 || broken) return;
    if (!target.write(bytes)) {
      source.pause();
      target.once("drain", () => source.resume());
    }
  };
  const guarded = (step: () => Uint8Array) => {
    if (broken) return;
    try {
      write(step());
    } catch {
      broken = true;
      note(`masking failed on ${label}; the rest of it is not shown`);
    }
  };
  return new Promise((resolve) => {
    source.on("data", (chunk: Buffer) => guarded(() => masker.push(chunk)));
    source.on("error", () => {});
    source.once("close", () => {
      // Held-back bytes (a possible secret start at the very end) come out now, masked.
      guarded(() => masker.end());
      resolve();
    });
  });
}

/** Spawns the command and resolves to the exit code to leave with, once its output is flushed. */
export async function runLocal(run: LocalRun): Promise<number> {
  const [file, ...args] = run.argv;
  const masked = run.masks !== undefined;
  // stdin is always the caller's (a TTY stays a TTY). Masking reads stdout/stderr, so they are
  // pipes then; with --no-masking the child gets the caller's own (a TTY included), like `op run`.
  const child = spawn(file!, args, { env: run.env, stdio: ["inherit", masked ? "pipe" : "inherit", masked ? "pipe" : "inherit"] });
  // The terminal sends Ctrl-C to the whole foreground group (the child included); a `kill` aimed
  // at veil alone reaches only veil. Forwarding covers the second case; veil itself waits for the child.
  const forward = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of FORWARDED) process.on(signal, forward);
  try {
    const pumps =
      run.masks === undefined
        ? []
        : [pump(child.stdout!, process.stdout, run.masks, run.note, "stdout"), pump(child.stderr!, process.stderr, run.masks, run.note, "stderr")];
    const exited = new Promise<number>((resolve) => {
      child.once("error", (error: NodeJS.ErrnoException) => {
        run.note(error.code === "ENOENT" ? `${file}: command not found` : `${file}: cannot run it (${error.code ?? error.message})`);
        resolve(error.code === "ENOENT" ? 127 : 126);
      });
      child.once("exit", (code, signal) => resolve(exitCodeOf(code, signal)));
    });
    const code = await exited;
    await Promise.all(pumps);
    return code;
  } finally {
    for (const signal of FORWARDED) process.off(signal, forward);
  }
}
