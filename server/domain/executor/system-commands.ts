// Runs the short system commands conversations need (mount, umount, the kill sweep) from one small long-lived bash.
import { type ChildProcessByStdio, execFile, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { closeInheritedFdsScript } from "./inherited-fds.js";
import { BASH, BASH_ARGS } from "./bash-path.js";

/**
 * Why: libuv starts every child with fork(), which copies the page tables of the whole server
 * on the event loop: ~4 ms at 40 MB of memory, ~26 ms at 200 MB (bench/README.md, "Conversation
 * stream"), paid for each mount, umount and kill sweep of every conversation. A shell of a
 * couple of MB forks in a fraction of a millisecond, so the server starts it once and hands it
 * each command's argv; the shell runs them one after another and answers with the exit code.
 * The argv travels as lines and becomes "$@" through `set --`: never evaluated, so no byte of
 * a path is read as shell syntax. An argument holding a newline or NUL cannot travel that way
 * and runs as a child of the server directly, as does everything while the shell is unavailable.
 */
const SCRIPT = [
  // The server's stray fds (LevelDB's files) must not stay open for the server's life in this shell.
  closeInheritedFdsScript([]),
  'while IFS= read -r id && IFS= read -r n; do',
  "  set --",
  "  i=0",
  '  while [ "$i" -lt "$n" ] && IFS= read -r arg; do set -- "$@" "$arg"; i=$((i + 1)); done',
  '  "$@" </dev/null >/dev/null 2>&1',
  '  echo "$id $?"',
  "done",
].join("\n");

/** The environment of every system command: a fixed PATH and nothing of the server's. */
export const SYSTEM_COMMAND_ENV = { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" };

type Shell = ChildProcessByStdio<Writable, Readable, null>;

/** One shell and the commands sent to it that have not answered yet. */
interface Runner {
  shell: Shell;
  pending: Map<number, { resolve: (code: number) => void; timer: NodeJS.Timeout; argv: readonly string[]; timeoutMs: number }>;
}

let current: Runner | undefined;
/** Set when the shell could not be started at all (no bash): every command then runs directly. */
let noShell = false;
let nextId = 1;

/**
 * Runs `argv` (an absolute path or a name on the fixed PATH, then its arguments) with no input
 * and its output discarded; resolves to its exit code, or -1 when it could not run or ran out of
 * `timeoutMs` (the shell is then replaced: the command may still be running in it).
 */
export function runSystemCommand(argv: readonly string[], timeoutMs: number): Promise<number> {
  if (argv.length === 0 || argv.some((arg) => /[\n\0]/.test(arg))) return runDirectly(argv, timeoutMs);
  const runner = noShell ? undefined : liveRunner();
  if (runner === undefined) return runDirectly(argv, timeoutMs);
  const id = nextId++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      runner.pending.delete(id);
      resolve(-1);
      // A command that hangs would hold up every later one: end it and its shell, start over.
      try {
        process.kill(-runner.shell.pid!, "SIGKILL");
      } catch {
        runner.shell.kill("SIGKILL");
      }
      if (current === runner) current = undefined;
    }, timeoutMs);
    runner.pending.set(id, { resolve, timer, argv, timeoutMs });
    runner.shell.stdin.write(`${id}\n${argv.length}\n${argv.join("\n")}\n`);
  });
}

/** The shell, started on first use and again after it died; undefined when it cannot be started. */
function liveRunner(): Runner | undefined {
  if (current !== undefined) return current;
  let shell: Shell;
  try {
    // Its own process group, so a command that hangs can be ended with the shell that runs it.
    shell = spawn(BASH, [...BASH_ARGS, "-c", SCRIPT], { env: SYSTEM_COMMAND_ENV, stdio: ["pipe", "pipe", "ignore"], detached: true });
  } catch {
    return undefined;
  }
  const runner: Runner = { shell, pending: new Map() };
  current = runner;
  // The server may exit while the shell idles: the shell ends when its input closes.
  shell.unref();
  (shell.stdin as unknown as { unref?: () => void }).unref?.();
  (shell.stdout as unknown as { unref?: () => void }).unref?.();
  shell.stdin.on("error", () => {});
  let buffered = "";
  shell.stdout.setEncoding("utf8");
  shell.stdout.on("data", (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
      const [id, code] = buffered.slice(0, end).split(" ").map(Number);
      buffered = buffered.slice(end + 1);
      const waiting = runner.pending.get(id!);
      if (waiting === undefined) continue;
      runner.pending.delete(id!);
      clearTimeout(waiting.timer);
      waiting.resolve(Number.isInteger(code) ? code! : -1);
    }
  });
  const gone = (started: boolean) => {
    if (current === runner) current = undefined;
    // Never started: the commands run directly. Died: what was sent has no answer coming, so it failed.
    if (!started) noShell = true;
    for (const waiting of runner.pending.values()) {
      clearTimeout(waiting.timer);
      if (started) waiting.resolve(-1);
      else void runDirectly(waiting.argv, waiting.timeoutMs).then(waiting.resolve);
    }
    runner.pending.clear();
  };
  shell.once("error", () => gone(shell.pid !== undefined));
  shell.once("exit", () => gone(true));
  return runner;
}

function runDirectly(argv: readonly string[], timeoutMs: number): Promise<number> {
  if (argv.length === 0) return Promise.resolve(-1);
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { env: SYSTEM_COMMAND_ENV, timeout: timeoutMs }, (error) => {
      resolve(error === null ? 0 : typeof error.code === "number" ? error.code : -1);
    });
  });
}
