// One spawned bash (inside bwrap or not): its pipes, their flow control, its start-up handshake and killing its whole tree.
import { type ChildProcessByStdio, spawn } from "node:child_process";
import type { Server } from "node:net";
import { constants } from "node:os";
import type { Readable, Writable } from "node:stream";
import { prologue } from "./bash-script.js";
import { ControlParser, type ShellState } from "./control-channel.js";
import { type RunAs, setprivArgs } from "./dynamic-user.js";
import { wrapCgroupJoin } from "./cgroup.js";
import { type EgressOptions, egressHelperLine, type NetworkMode, receiveListener } from "./egress-listener.js";
import { type LaunchLimits, withTmpfsCaps, wrapRlimits } from "./limits.js";
import { killProcessTree, signalCommandProcesses } from "./process-tree.js";
import { withoutInheritedFds } from "./inherited-fds.js";
import { BASH, BASH_ARGS } from "./bash-path.js";
import { bubblewrapArgs } from "./sandbox.js";
import type { BubblewrapSandbox } from "./types.js";

/** Which of the shell's output pipes. */
export type StreamName = "stdout" | "stderr";

/** Receives what the shell does while a command runs. */
export interface ShellSink {
  output(stream: StreamName, data: Buffer): void;
  control(state: ShellState): void;
  /** The shell is gone and its pipes are drained; `exitCode` is its own (128+n when killed by signal n). */
  ended(exitCode: number): void;
}

/** How to start a shell. */
export interface ShellLaunch {
  /** The bubblewrap to run the shell in, or undefined for an unsandboxed shell. */
  sandbox: BubblewrapSandbox | undefined;
  /** The conversation's own uid/gid (server running as root), or undefined to keep the server's. */
  user: RunAs | undefined;
  workspace: string;
  network: NetworkMode;
  /** With network "egress" (sandbox only): the trust files and who serves this shell's listener. */
  egress: EgressOptions | undefined;
  /** Sandbox only: directory with the passwd/group stubs bound over /etc/passwd and /etc/group. */
  identityDir: string;
  /** Sandbox only: host paths hidden inside. */
  hidden: readonly string[];
  env: Record<string, string>;
  cwd: string | undefined;
  /** Resource limits to wrap the shell in; undefined for none. */
  limits: LaunchLimits | undefined;
}

/**
 * The shell's whole argv, outermost wrapper first. Each layer execs the next:
 *   1. [cgroup join, as root: resource limits]
 *   2. setpriv to the conversation's uid, when there is one and bwrap may run unprivileged
 *   3. [prlimit: resource limits]
 *   4. bwrap ... -- bash, or bash alone
 */
export function shellArgv(launch: ShellLaunch): string[] {
  // Without asUser, bwrap needs root for its namespaces and maps it to uid 1000 inside instead.
  const dropPrivileges = launch.user !== undefined && (launch.sandbox === undefined || launch.sandbox.asUser);
  const { limits } = launch;
  let sandbox =
    launch.sandbox === undefined
      ? []
      : [
          launch.sandbox.bwrap,
          ...bubblewrapArgs({
            workspace: launch.workspace,
            network: launch.network,
            identityDir: launch.identityDir,
            hidden: launch.hidden,
            ...(launch.egress !== undefined ? { egressFiles: launch.egress.files } : {}),
          }),
        ];
  if (limits !== undefined && sandbox.length > 0) sandbox = [sandbox[0]!, ...withTmpfsCaps(sandbox.slice(1), limits.tmpfsBytes)];
  const shell = [...sandbox, BASH, ...BASH_ARGS];
  const limited = limits === undefined ? shell : wrapRlimits(shell, limits.rlimits);
  const dropped = dropPrivileges ? [...setprivArgs(launch.user!), ...limited] : limited;
  // The cgroup is joined first, as the server, before anything can fork out of it.
  return limits === undefined ? dropped : wrapCgroupJoin(dropped, limits.cgroupProcs);
}

// A fd 3 report bigger than this (huge exported variables) is dropped rather than buffered.
const CONTROL_LIMIT = 8 * 1024 * 1024;
// Once the shell is dead its pipes are drained ignoring backpressure; this much is all a dead shell's
// pipes can hold (kernel pipe plus Node's buffer, per stream), so more means a survivor keeps writing.
const DRAIN_LIMIT = 512 * 1024;
const DRAIN_GRACE_MS = 1_000;
const START_TIMEOUT_MS = 10_000;
/** Command input (SendInput) the shell has not taken yet: more waits at the caller (RESOURCE_EXHAUSTED). */
export const INPUT_BUFFER_BYTES = 1024 * 1024;
// The most bytes one relay frame carries (head -c reads it in one go).
const INPUT_FRAME_BYTES = 64 * 1024;

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

/** A live shell process. Output goes to the attached sink; while none is attached it is held (and the pipes paused). */
export class ShellProcess {
  private sink: ShellSink | undefined;
  private readonly held: { stream: StreamName; data: Buffer }[] = [];
  private draining = false;
  private drained = 0;
  private endCode: number | undefined;
  private readonly closed: Promise<void>;
  private killing: Promise<void> | undefined;
  private startupError = "";
  private finishing = false;
  /** kill() swept the live shell's tree: nothing it started is left for finish() to find. */
  private swept = false;
  private done = false;
  /** Egress only: detaches and closes this shell's listener. */
  private releaseEgress: (() => void) | undefined;

  private constructor(
    private readonly child: Child,
    private readonly control: Readable,
    /** fd 7: frames for the stdin relay of commands run with stdin (see bash-script.ts). */
    private readonly input: Writable,
  ) {
    input.on("error", () => {});
    this.closed = new Promise((resolve) => child.once("close", () => resolve()));
    for (const stream of ["stdout", "stderr"] as const) {
      child[stream].pause();
      child[stream].on("data", (data: Buffer) => this.deliver(stream, data));
      child[stream].on("error", () => {});
    }
    // Writing to a shell that just died raises EPIPE here; the death itself is handled on exit.
    child.stdin.on("error", () => {});
    control.on("error", () => {});
    const parser = new ControlParser(CONTROL_LIMIT, (state) => this.sink?.control(state));
    control.on("data", (data: Buffer) => parser.push(data));
    // A failed spawn (no such file) reports "error" and never "exit".
    child.on("error", (err) => {
      if (this.endCode !== undefined) return;
      this.startupError ||= err.message;
      this.endCode = 127;
      void this.finish();
    });
    child.once("exit", (code, signal) => {
      this.endCode ??= code ?? 128 + (signal ? (constants.signals[signal] ?? 9) : 9);
      void this.finish();
    });
  }

  /**
   * Spawns a shell and waits for its first state report; throws with the shell's stderr when it does not
   * come. With network "egress" it also waits for the in-sandbox helper's listener and hands it to
   * `egress.attach`; a missing or wrong listener fails the start (no network rather than a wrong one).
   */
  static async start(launch: ShellLaunch): Promise<{ shell: ShellProcess; state: ShellState }> {
    const egress = launch.network === "egress" ? launch.egress : undefined;
    if (launch.network === "egress" && (egress === undefined || launch.sandbox === undefined)) {
      throw new Error("network egress: needs the sandbox and the egress options");
    }
    // Only the fds of the protocol below reach the shell (the server's own, LevelDB's files above all, never).
    const [file, ...args] = withoutInheritedFds(shellArgv(launch), egress === undefined ? [3, 7] : [3, 6, 7]);
    // detached: a process group of its own, so the shell's tree can be killed without touching the server.
    // env: given whole; the server's process.env never reaches the shell (nor bwrap's argv, unlike --setenv).
    // Egress: fd 6 is an IPC channel (NODE_CHANNEL_FD=6) for the helper's listener; 4 and 5 stay free for the prologue.
    // fd 7 carries command input (SendInput) to the stdin relay.
    const child = spawn(file!, args, {
      cwd: launch.workspace,
      env: launch.env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe", "pipe", "ignore", "ignore", egress === undefined ? "ignore" : "ipc", "pipe"],
    }) as unknown as Child;
    const control = child.stdio[3] as Readable;
    const shell = new ShellProcess(child, control, (child.stdio as unknown as Writable[])[7]!);
    const state = await shell.handshake(launch.cwd, egress);
    return { shell, state };
  }

  /** Host pid of the spawned process (its outermost wrapper, or bash); undefined once it has exited. */
  get pid(): number | undefined {
    return this.endCode === undefined ? this.child.pid : undefined;
  }

  /** True once the process has exited (its pipes may still be draining). */
  get exited(): boolean {
    return this.endCode !== undefined;
  }

  /** True once `kill()` was called: the shell must not take another command. */
  get killed(): boolean {
    return this.killing !== undefined;
  }

  /** Routes output and reports to `sink`, first handing it what was held while no one listened. */
  attach(sink: ShellSink): void {
    this.sink = sink;
    for (const { stream, data } of this.held.splice(0)) sink.output(stream, data);
    if (this.done) sink.ended(this.endCode ?? 1);
  }

  /** Stops routing to the sink; pipes are paused so held output stays small. */
  detach(): void {
    this.sink = undefined;
    this.setPaused("stdout", true);
    this.setPaused("stderr", true);
  }

  /** Keeps output that arrived after a command's marker for whoever attaches next (background jobs' output). */
  hold(stream: StreamName, data: Buffer): void {
    if (data.length > 0) this.held.push({ stream, data });
  }

  /** Pauses or resumes one pipe; ignored while a dead shell's pipes drain. */
  setPaused(stream: StreamName, paused: boolean): void {
    if (this.draining) return;
    if (paused) this.child[stream].pause();
    else this.child[stream].resume();
  }

  /** Writes bash text to the shell's stdin. */
  write(text: string): void {
    if (!this.exited) this.child.stdin.write(text);
  }

  /**
   * Queues input for the running command's stdin relay as frames; `eof` ends the relay. False (and
   * nothing queued) when more than INPUT_BUFFER_BYTES would wait unread.
   */
  writeInput(data: Uint8Array, eof: boolean): boolean {
    if (this.exited) return true;
    if (this.input.writableLength + data.length > INPUT_BUFFER_BYTES) return false;
    for (let at = 0; at < data.length; at += INPUT_FRAME_BYTES) {
      const frame = data.subarray(at, at + INPUT_FRAME_BYTES);
      this.input.write(Buffer.concat([Buffer.from(`${frame.length}\n`), frame]));
    }
    if (eof) this.input.write("0\n");
    return true;
  }

  /** Signals the shell and what the running command started (see signalCommandProcesses); earlier background jobs are left alone. */
  signalCommand(signal: NodeJS.Signals, sinceTicks: number): void {
    if (this.child.pid !== undefined && !this.exited) signalCommandProcesses(this.child.pid, sinceTicks, signal);
  }

  /** Kills the shell and everything it started; resolves when they are gone and the pipes are closed. */
  kill(): Promise<void> {
    this.killing ??= (async () => {
      if (this.child.pid !== undefined && !this.exited) {
        // Every signal of the sweep is sent before its first await: by the time the exit is seen, the tree is frozen and killed.
        const sweep = killProcessTree(this.child.pid);
        this.swept = true;
        await sweep;
      }
      await this.closed;
    })();
    return this.killing;
  }

  private async handshake(cwd: string | undefined, egress: EgressOptions | undefined): Promise<ShellState> {
    const collectStderr = (data: Buffer) => {
      if (this.startupError.length < 2_000) this.startupError += data.toString("utf8");
    };
    this.child.stderr.on("data", collectStderr);
    this.setPaused("stderr", false);
    // Listening before the first write: the helper's message comes before the state report.
    const receiving = egress === undefined ? undefined : receiveListener(this.child);
    let timer: NodeJS.Timeout | undefined;
    try {
      const [state, listener] = await Promise.all([
        new Promise<ShellState>((resolve, reject) => {
          timer = setTimeout(() => reject(new Error("shell did not start in time")), START_TIMEOUT_MS);
          receiving?.listener.catch(reject);
          this.attach({
            output: () => {},
            control: resolve,
            ended: (code) => reject(new Error(`shell exited during start-up (${code}): ${this.startupError.trim().slice(0, 500)}`)),
          });
          this.write(`${egress === undefined ? "" : egressHelperLine()}${prologue(cwd)}`);
        }),
        receiving?.listener,
      ]);
      this.detach();
      const extra = receiving?.extra();
      if (extra !== undefined) throw new Error(extra);
      if (egress !== undefined && listener !== undefined) this.serveEgress(egress, listener);
      return state;
    } catch (err) {
      receiving?.cancel();
      await this.kill();
      throw err;
    } finally {
      clearTimeout(timer);
      this.child.stderr.off("data", collectStderr);
    }
  }

  /** Hands the shell's listener to its server; detaches it and closes it once the shell exits (the listener keeps the dead netns alive). */
  private serveEgress(egress: EgressOptions, listener: Server): void {
    let detach: () => void;
    try {
      detach = egress.attach(listener);
    } catch (err) {
      listener.close();
      throw err;
    }
    this.releaseEgress = () => {
      this.releaseEgress = undefined;
      try {
        detach();
      } catch {
        // The gateway's own trouble; the listener is closed regardless.
      }
      listener.close();
    };
    if (this.exited) this.releaseEgress();
  }

  private deliver(stream: StreamName, data: Buffer): void {
    if (this.draining) {
      this.drained += data.length;
      if (this.drained > DRAIN_LIMIT) {
        this.child.stdout.destroy();
        this.child.stderr.destroy();
        return;
      }
    }
    if (this.sink) this.sink.output(stream, data);
    else this.held.push({ stream, data });
  }

  /** After exit: sweep what the shell left running, drain its pipes, then tell the sink. */
  private async finish(): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    // The network goes with the shell: nothing of a dead shell may still reach the gateway.
    this.releaseEgress?.();
    // The shell's pid is already reaped here, so only its process group seeds the sweep. A shell
    // that kill() swept needs none: its group and descendants were frozen and killed before it could exit.
    if (this.child.pid !== undefined && !this.swept) await killProcessTree(this.child.pid, { rootReaped: true }).catch(() => {});
    this.draining = true;
    this.child.stdout.resume();
    this.child.stderr.resume();
    this.control.resume();
    // A process that escaped the sweep may keep a pipe open; do not wait for it forever.
    const grace = setTimeout(() => {
      this.child.stdout.destroy();
      this.child.stderr.destroy();
      this.control.destroy();
    }, DRAIN_GRACE_MS);
    await this.closed;
    clearTimeout(grace);
    this.done = true;
    this.sink?.ended(this.endCode ?? 1);
  }
}
