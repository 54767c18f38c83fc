// Runs the `veil` CLI on a real pseudo-terminal (python3's pty module as the host), for stdin, TTY and signal tests.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { VEIL_BIN } from "./child-server.js";

const HOST = fileURLToPath(new URL("./pty-host.py", import.meta.url));

/** Why PTY tests cannot run here, or undefined when they can. */
export function ptyMissing(): string | undefined {
  const probe = spawnSync("python3", ["-c", "import pty, select"], { stdio: "ignore" });
  return probe.status === 0 ? undefined : "python3 with the pty module is not installed (Debian: python3)";
}

/** A `veil` process on a terminal: what it printed (terminal line endings turned into \n), its pid, its exit code. */
export interface PtyRun {
  proc: ChildProcess;
  /** Types on the terminal (\x03 is Ctrl-C). */
  type(text: string): void;
  output(): string;
  /** The host's stderr: only its own notes (the terminal carries both of veil's streams). */
  hostErrors(): string;
  /** Resolves once the output matches, or rejects after timeoutMs. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** The pid of veil itself (the terminal's session leader). */
  veilPid(): Promise<number>;
  exit: Promise<number | null>;
}

/** Starts `veil args...` on a new terminal with only PATH, the given server and env. */
export function veilOnPty(args: string[], target: { url: string; dataDir: string }, env: Record<string, string> = {}, cwd?: string): PtyRun {
  const proc = spawn("python3", [HOST, process.execPath, VEIL_BIN, ...args], {
    env: { PATH: process.env.PATH ?? "", VEIL_URL: target.url, VEIL_DATA_DIR: target.dataDir, ...env },
    stdio: ["pipe", "pipe", "pipe"],
    ...(cwd !== undefined ? { cwd } : {}),
  });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString("utf8").replaceAll("\r\n", "\n")));
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString("utf8")));
  const exit = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const waitFor = (pattern: RegExp, timeoutMs = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const check = () => {
        if (pattern.test(out)) return resolve();
        if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${pattern}; output so far: ${JSON.stringify(out)}`));
        setTimeout(check, 20);
      };
      check();
    });
  return {
    proc,
    type: (text) => proc.stdin!.write(text),
    output: () => out,
    hostErrors: () => err,
    waitFor,
    async veilPid() {
      for (let i = 0; i < 500 && !/pid \d+/.test(err); i++) await new Promise((r) => setTimeout(r, 10));
      return Number(/pid (\d+)/.exec(err)![1]);
    },
    exit,
  };
}
