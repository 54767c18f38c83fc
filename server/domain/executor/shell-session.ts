// A conversation's terminal: one persistent bash, commands run one at a time, and a replacement shell when one dies.
import { chownSync, existsSync, mkdirSync, realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { ConversationCgroup, detectCgroups } from "./cgroup.js";
import { adoptLine } from "./bash-script.js";
import { CommandRun, EXIT_CODE_KILLED } from "./command-run.js";
import type { ShellState } from "./control-channel.js";
import { isRoot, killUserProcesses, type RunAs } from "./dynamic-user.js";
import { EgressNeedsSandboxError, type EgressOptions, egressEnv, type NetworkMode } from "./egress-listener.js";
import { buildShellEnv, envForRestore } from "./environment.js";
import { IdleWatch, type WatchedLimits } from "./limit-watch.js";
import { type LaunchLimits, type ResourceLimits, rlimitProcesses } from "./limits.js";
import { removeIdentityFiles, writeIdentityFiles } from "./sandbox-fs.js";
import { ShellProcess } from "./shell-process.js";
import type { BubblewrapSandbox, CommandEvent, CommandOptions, ShellOptions, ShellSession } from "./types.js";
import { isMountPoint } from "./workspace-mount.js";

const DEFAULT_BUFFER_BYTES = 1024 * 1024;

/**
 * Starts a shell for one conversation and resolves once it is ready. A shell killed by a timeout, a cut,
 * an abort or its own `exit` is replaced at the next command, started in the last reported cwd with
 * the last reported exported variables. Lost at a replacement: shell variables, functions, options,
 * exports made by the killed command itself, and (in the sandbox) a cwd inside the private /tmp.
 * With a `user`, commands run as that uid (also without the sandbox), and close() kills every process
 * of it, which also catches a double-forked setsid daemon. Without the sandbox and without a user,
 * commands run as the server's user with no isolation (they can read its files and /proc), a
 * double-forked setsid daemon escapes close(), and nothing dies with a crashed server.
 */
export async function openShellSession(options: ShellOptions): Promise<ShellSession> {
  if (!isAbsolute(options.workspace)) throw new Error("workspace must be an absolute path");
  if (options.user !== undefined && !isRoot()) throw new Error("user: only a server running as root can run commands as another uid");
  const workspace = realpathSync(options.workspace);
  const cwd = workingDirectory(workspace, options.workingDir ?? ".", options.user);
  const sandbox = options.sandbox.kind === "bubblewrap" ? options.sandbox : undefined;
  const network = networkMode(options.network);
  if (network === "egress" && sandbox === undefined) throw new EgressNeedsSandboxError();
  if (network === "egress" && options.egress === undefined) throw new Error("network egress: the egress options (trust files, attach) are required");
  // Beside the workspace, not in it: the command must not be able to rewrite its own passwd entry.
  const identityDir = `${workspace}.identity`;
  if (sandbox !== undefined) writeIdentityFiles(identityDir, workspace);
  const limits = options.limits === undefined ? undefined : sessionLimits(options.limits, workspace, sandbox !== undefined);
  const session = new Session({
    sandbox,
    user: options.user,
    workspace,
    identityDir,
    hidden: options.hidden ?? [],
    network,
    egress: network === "egress" ? options.egress : undefined,
    env: buildShellEnv(workspace, options.env),
    cwd,
    bufferBytes: options.outputBufferBytes ?? DEFAULT_BUFFER_BYTES,
    limits,
  });
  try {
    await session.start();
  } catch (error) {
    await session.close();
    throw error;
  }
  return session;
}

/** The legacy boolean as a mode: true is the host's network, false (or nothing) none. */
function networkMode(network: ShellOptions["network"]): NetworkMode {
  if (network === undefined || network === false) return "none";
  if (network === true) return "host";
  if (network !== "none" && network !== "egress" && network !== "host") throw new Error(`network: must be "none", "egress" or "host", not ${JSON.stringify(network)}`);
  return network;
}

/** The session's cgroup (when the machine has one for us), how its shells are wrapped, and what its commands are watched for. */
function sessionLimits(limits: ResourceLimits, workspace: string, sandboxed: boolean): SessionLimits {
  const { support } = detectCgroups();
  const cgroup = support === undefined ? undefined : ConversationCgroup.create(support, basename(workspace), limits);
  const processes = rlimitProcesses(limits, cgroup !== undefined);
  return {
    launch: {
      rlimits: { fileSizeBytes: limits.fileSizeBytes, ...(processes !== undefined ? { processes } : {}) },
      tmpfsBytes: limits.diskBytes,
      cgroupProcs: cgroup?.procsFiles ?? [],
    },
    watched: { cgroup, workspace, workspaceMounted: isMountPoint(workspace), diskBytes: limits.diskBytes, sandboxed },
  };
}

interface SessionLimits {
  launch: LaunchLimits;
  watched: WatchedLimits;
}

interface SessionConfig {
  sandbox: BubblewrapSandbox | undefined;
  user: RunAs | undefined;
  identityDir: string;
  hidden: readonly string[];
  workspace: string;
  network: NetworkMode;
  egress: EgressOptions | undefined;
  env: Record<string, string>;
  cwd: string;
  bufferBytes: number;
  limits: SessionLimits | undefined;
}

class Session implements ShellSession {
  private shell: ShellProcess | undefined;
  private starting: Promise<{ shell: ShellProcess }> | undefined;
  private current: CommandRun | undefined;
  private closed = false;
  /** A command was asked for: the session can no longer be adopted. */
  private used = false;
  private closing: Promise<void> | undefined;
  private queue: Promise<void> = Promise.resolve();
  /** What a replacement shell starts with: the last state a shell reported. */
  private env: Record<string, string>;
  private cwd: string;
  private readonly idle: IdleWatch | undefined;

  constructor(private readonly config: SessionConfig) {
    this.env = config.env;
    this.cwd = config.cwd;
    const cgroup = config.limits?.watched.cgroup;
    // A shell killed here is replaced at the next command, as after a timeout.
    if (cgroup !== undefined) this.idle = new IdleWatch(cgroup, () => void this.shell?.kill());
  }

  get pid(): number | undefined {
    return this.shell?.pid;
  }

  get queuedBytes(): number {
    return this.current?.queue.queuedBytes ?? 0;
  }

  run(command: string, options: CommandOptions): AsyncIterable<CommandEvent> {
    return this.runSerialized(command, options);
  }

  cutCurrent(): void {
    this.current?.cut();
  }

  adopt(env: Record<string, string>, workingDir: string): void {
    if (this.closed || this.used) throw new Error("adopt: only a session that has run no command yet");
    const shellEnv = buildShellEnv(this.config.workspace, env);
    const cwd = workingDirectory(this.config.workspace, workingDir === "" ? "." : workingDir, this.config.user);
    this.env = shellEnv;
    this.cwd = cwd;
    if (this.shell !== undefined && !this.shell.exited && !this.shell.killed) this.shell.write(adoptLine(env, cwd));
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.idle?.stop();
      // A shell still starting is killed too, not only the one in place.
      const started = await this.starting?.catch(() => undefined);
      await Promise.all([started?.shell.kill(), this.shell?.kill()]);
      // Whatever left the shell's tree (setsid, double forks) still runs as the conversation's uid.
      if (this.config.user !== undefined) await killUserProcesses(this.config.user);
      if (this.config.sandbox !== undefined) removeIdentityFiles(this.config.identityDir);
      // Its processes are gone: the cgroup can go too (a straggler only leaves an empty cgroup behind).
      await this.config.limits?.watched.cgroup?.remove().catch(() => {});
    })();
    return this.closing;
  }

  /** Starts the first shell; throws if it cannot start (bwrap failing, for one). */
  async start(): Promise<void> {
    await this.liveShell();
  }

  private async *runSerialized(command: string, options: CommandOptions): AsyncGenerator<CommandEvent> {
    if (command.includes("\0")) throw new Error("command contains a NUL byte");
    if (!(options.timeoutMs > 0)) throw new Error("timeoutMs must be positive");
    this.used = true;
    const release = await this.turn();
    this.idle?.stop();
    try {
      if (this.closed) throw new Error("shell session is closed");
      if (options.signal?.aborted) {
        yield { type: "exit", exitCode: EXIT_CODE_KILLED, durationMs: 0, timedOut: false, truncated: false, limit: undefined };
        return;
      }
      const run = new CommandRun(await this.liveShell(), command, options, this.config.bufferBytes, this.config.limits?.watched);
      this.current = run;
      try {
        for (;;) {
          const item = await run.queue.next();
          if (item.kind === "output") {
            yield { type: "output", stream: item.stream, data: item.data };
            continue;
          }
          // Bookkeeping before the yield: a consumer may stop pulling right after the exit event.
          if (run.report) this.remember(run.report);
          const truncated = run.truncated;
          this.current = undefined;
          yield { type: "exit", exitCode: item.exitCode, durationMs: item.durationMs, timedOut: item.timedOut, truncated, limit: item.limit };
          return;
        }
      } finally {
        this.current = undefined;
        await run.dispose();
        if (!this.closed) this.idle?.start();
      }
    } finally {
      release();
    }
  }

  /** Waits for the previous command to finish; returns the function that lets the next one go. */
  private async turn(): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.queue;
    this.queue = previous.then(() => mine);
    await previous;
    return release;
  }

  /** The running shell, or a new one restored to the last reported state. */
  private async liveShell(): Promise<ShellProcess> {
    if (this.shell && !this.shell.exited && !this.shell.killed) return this.shell;
    await this.shell?.kill();
    this.shell = undefined;
    const starting = ShellProcess.start({
      sandbox: this.config.sandbox,
      user: this.config.user,
      identityDir: this.config.identityDir,
      hidden: this.config.hidden,
      workspace: this.config.workspace,
      network: this.config.network,
      egress: this.config.egress,
      // Veil's proxy and trust variables win, also over what a killed shell last exported.
      env: this.config.egress === undefined ? this.env : { ...this.env, ...egressEnv() },
      cwd: this.cwd,
      limits: this.config.limits?.launch,
    });
    this.starting = starting;
    const { shell, state } = await starting;
    if (this.closed) {
      await shell.kill();
      throw new Error("shell session is closed");
    }
    this.shell = shell;
    this.remember(state);
    return shell;
  }

  private remember(state: ShellState): void {
    if (state.cwd !== undefined) this.cwd = state.cwd;
    if (state.env !== undefined) this.env = envForRestore(state.env);
  }
}

/** Resolves and creates the initial directory, refusing anything (a `..`, a symlink) that leads out of the workspace. */
function workingDirectory(workspace: string, workingDir: string, user: RunAs | undefined): string {
  const dir = resolve(workspace, workingDir);
  const inside = (path: string) => {
    const rel = relative(workspace, path);
    return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
  };
  if (!inside(dir)) throw new Error("workingDir must stay inside the workspace");
  let existing = dir;
  while (!existsSync(existing)) existing = dirname(existing);
  if (!inside(realpathSync(existing))) throw new Error("workingDir must stay inside the workspace");
  const created = mkdirSync(dir, { recursive: true });
  // Created by the server (root): hand what it made to the conversation's user, or the command could not write there.
  if (user !== undefined && created !== undefined) {
    for (let path = dir; path.length >= created.length; path = dirname(path)) chownSync(path, user.uid, user.gid);
  }
  return dir;
}
