// The executor's public shapes: what a caller passes to open a shell and run commands, and what comes back.
import type { CommandControl } from "./command-control.js";
import type { RunAs } from "./dynamic-user.js";
import type { EgressOptions, NetworkMode } from "./egress-listener.js";
import type { LimitName, ResourceLimits } from "./limits.js";

/** How to isolate commands: "required" (default; "auto" is its synonym) runs them only in bubblewrap, "off" never uses it. */
export type SandboxMode = "auto" | "required" | "off";

/** A bubblewrap that works here, as `detectSandbox` found it. */
export interface BubblewrapSandbox {
  kind: "bubblewrap";
  bwrap: string;
  /** True when bwrap runs as the conversation's own unprivileged uid (server is root, unprivileged user namespaces work). */
  asUser: boolean;
  /** Why bwrap runs as root although the server could drop privileges (unprivileged user namespaces failed). */
  fallback?: string;
}

/** What `detectSandbox` answers: bubblewrap, no sandbox by choice, or bubblewrap wanted but not usable (and why). */
export type SandboxStatus = BubblewrapSandbox | { kind: "none" } | { kind: "unavailable"; problem: string };

/** Options for one persistent shell (one per conversation). */
export interface ShellOptions {
  /** Absolute directory created by the caller; HOME points here and, in the sandbox, it is the only writable place besides a private /tmp. */
  workspace: string;
  /** The full environment besides the base (PATH, HOME, LANG, TERM): conversation env plus injected secrets. Overrides the base. */
  env: Record<string, string>;
  /** Initial working directory, relative to the workspace; created when missing; may not leave the workspace. */
  workingDir?: string;
  /** The sandbox `detectSandbox` found, or none. */
  sandbox: BubblewrapSandbox | { kind: "none" };
  /**
   * Run commands as this uid/gid (the server must be root): through setpriv, and inside bwrap as well
   * when `sandbox.asUser`. On close every process of this uid is killed, whatever tree it left.
   */
  user?: RunAs;
  /** Sandbox only: host paths never visible inside, wherever they lie (data dir, master key file, work dir root). */
  hidden?: readonly string[];
  /**
   * "none" (default, also `false`): only a private loopback in the sandbox. "host" (also `true`): the
   * host's network. "egress": a private network namespace whose only way out is 127.0.0.1:3128, a
   * listener handed to `egress.attach` for every shell, with the proxy and trust env set (see
   * egress-listener.ts); needs the sandbox (EgressNeedsSandboxError otherwise) and `egress`.
   */
  network?: NetworkMode | boolean;
  /** Required with network "egress": the trust files and the callback serving each shell's listener. */
  egress?: EgressOptions;
  /** Bytes of output buffered for a consumer that is not pulling before the shell's pipes are paused. Default 1 MiB. */
  outputBufferBytes?: number;
  /**
   * Resource limits for every process of the session (see limits.ts); none when absent. A command that
   * reaches one is ended (its shell killed and replaced at the next command) and its exit says which.
   */
  limits?: ResourceLimits;
}

/** Options for one command. */
export interface CommandOptions {
  /** Wall-clock limit; on expiry the whole shell (command, its children, background jobs) is killed and the exit says timedOut. */
  timeoutMs: number;
  /**
   * Cap on the command's raw stdout+stderr bytes. The output is cut exactly at the cap, the command
   * is killed and the exit says truncated. Callers that must cap after masking use `cutCurrent()` instead.
   */
  outputLimitBytes?: number;
  /** Aborting kills the command now (exit code EXIT_CODE_KILLED); output produced before the kill is still delivered. */
  signal?: AbortSignal;
  /**
   * Variables exported for this command only (INJECT_REFERENCED). They reach bash through its
   * private stdin pipe, never argv or a file, and are unset after the command, before the state
   * snapshot, so later commands and replacement shells do not see them.
   */
  env?: Record<string, string>;
  /** Input and signals from the caller; with `control.stdin` the command's stdin is fed from it instead of /dev/null. */
  control?: CommandControl;
}

/** What `run()` yields: output chunks as they come, then exactly one exit event. */
export type CommandEvent =
  | { type: "output"; stream: "stdout" | "stderr"; data: Uint8Array }
  | { type: "exit"; exitCode: number; durationMs: number; timedOut: boolean; truncated: boolean; limit: LimitName | undefined };

/** One persistent bash: cwd, exported variables, shell variables and functions carry from one command to the next. */
export interface ShellSession {
  /**
   * Runs one command once iteration starts; yields its output chunks as they come, then one exit event.
   * Commands are serialized: a second iteration waits for the first to finish. Leaving the loop early
   * kills the command. Throws when the session is closed, the command contains a NUL byte, or a
   * replacement shell cannot be started.
   */
  run(command: string, options: CommandOptions): AsyncIterable<CommandEvent>;
  /**
   * Cuts the running command for an output cap applied by the caller: kills it (and the shell, which is
   * restored for the next command), drops output not yet yielded, and makes its exit event say
   * truncated: true. Also marks the exit truncated when the command already ended but its exit event
   * was not yielded yet. No-op when no command runs.
   */
  cutCurrent(): void;
  /**
   * For a session opened ahead of its use with no `env` and the workspace as its directory (a standby
   * shell): from now on it is as if it had been opened with `env` and `workingDir`. The live shell
   * gets them before any command, and a replacement shell starts with them. Only before the first
   * command; throws on a name or value `openShellSession` would refuse, or a directory outside the workspace.
   */
  adopt(env: Record<string, string>, workingDir: string): void;
  /** Kills every process the session started (background ones included) and waits for them to be gone. Idempotent. */
  close(): Promise<void>;
  /** Host pid of the shell (of setpriv/bwrap when wrapped); undefined while no shell runs. */
  readonly pid: number | undefined;
  /** Output bytes waiting for the consumer of the running command (bounded by `outputBufferBytes` plus one chunk). */
  readonly queuedBytes: number;
}
