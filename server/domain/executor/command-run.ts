// One command's life in the shell: end markers, raw output cap, timeout, abort, cut and resource limits, as a queue of events.
import { randomBytes } from "node:crypto";
import { commandWrapper, markerBytes } from "./bash-script.js";
import type { ShellState } from "./control-channel.js";
import { LimitWatch, type WatchedLimits } from "./limit-watch.js";
import { EXIT_CODE_FILE_SIZE, type LimitName } from "./limits.js";
import { OutputQueue } from "./output-queue.js";
import { nowTicks } from "./process-tree.js";
import { SentinelScanner } from "./sentinel.js";
import type { ShellProcess, ShellSink, StreamName } from "./shell-process.js";
import type { CommandOptions } from "./types.js";
import { MAX_TIMER_MS } from "../timer-range.js";

/** Exit code reported when the timeout killed the command (as coreutils `timeout` does); `timedOut` is true too. */
export const EXIT_CODE_TIMED_OUT = 124;
/** Exit code reported when an abort, a cut or the session's close killed the command (128 + SIGKILL). */
export const EXIT_CODE_KILLED = 137;

/** What the run hands to the session, in order: output chunks, then one exit. */
export type RunItem =
  | { kind: "output"; stream: StreamName; data: Buffer }
  | { kind: "exit"; exitCode: number; durationMs: number; timedOut: boolean; limit: LimitName | undefined };

type KillReason = "timeout" | "abort" | "cut" | "limit";

/** Starts the command on construction; the session pulls `queue` and disposes the run when it stops pulling. */
export class CommandRun implements ShellSink {
  readonly queue: OutputQueue<RunItem>;
  /** The shell's report once the command ended (also if a kill raced it): cwd and exports to restore in a replacement shell. */
  report: ShellState | undefined;
  /** True when the exit must say truncated: raw cap reached or `cut()` called before the exit was yielded. */
  truncated = false;
  private readonly scanners: Record<StreamName, SentinelScanner>;
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = () => this.kill("abort");
  private killReason: KillReason | undefined;
  private finished = false;
  /** A signal was forwarded to this command (and its shell). */
  private signalled = false;
  /** Output after a cut is not the caller's to see. */
  private discarding = false;
  private emitted = 0;
  private readonly watch: LimitWatch | undefined;
  /** The resource limit the command reached, once one is seen. */
  private limit: LimitName | undefined;
  /** Run with stdin: whether its relay got its end frame yet (it must, before another relay may start). */
  private inputOpen: boolean;
  /** When the command began, in /proc clock ticks: what started since is the command's (for signals). */
  private readonly startTicks = nowTicks();

  constructor(
    private readonly shell: ShellProcess,
    command: string,
    private readonly options: CommandOptions,
    bufferBytes: number,
    private readonly limits?: WatchedLimits,
  ) {
    // Random per command: output cannot end a command early by printing an old marker.
    const marker = { head: randomBytes(8).toString("hex"), tail: randomBytes(8).toString("hex") };
    const bytes = markerBytes(marker);
    this.scanners = { stdout: new SentinelScanner(bytes), stderr: new SentinelScanner(bytes) };
    this.queue = new OutputQueue<RunItem>(
      bufferBytes,
      (item) => (item.kind === "output" ? item.data.length : 0),
      (full) => this.pressure(full),
    );
    this.inputOpen = options.control?.stdin === true;
    shell.attach(this);
    this.pressure(false);
    shell.write(commandWrapper(command, marker, options.env, this.inputOpen));
    this.timer = setTimeout(() => this.kill("timeout"), Math.min(Math.max(options.timeoutMs, 1), MAX_TIMER_MS));
    options.signal?.addEventListener("abort", this.onAbort, { once: true });
    options.control?.attach({ input: (data, eof) => this.input(data, eof), signal: (signal) => this.signal(signal) });
    if (limits !== undefined) this.watch = new LimitWatch(limits, shell.pid, (limit) => this.limitReached(limit));
  }

  /** See ShellSession.cutCurrent. */
  cut(): void {
    this.truncated = true;
    this.discarding = true;
    this.queue.discard((item) => item.kind === "output");
    this.kill("cut");
  }

  /** Feeds the command's stdin (only a command run with stdin, until eof); false when the input buffer is full. */
  private input(data: Uint8Array, eof: boolean): boolean {
    if (!this.inputOpen || this.finished) return true;
    if (!this.shell.writeInput(data, eof)) return false;
    if (eof) this.inputOpen = false;
    return true;
  }

  /** Signals what the command started, and the shell running it (as Ctrl-C reaches a terminal's foreground job). */
  private signal(signal: NodeJS.Signals): void {
    if (this.finished) return;
    this.signalled = true;
    this.shell.signalCommand(signal, this.startTicks);
  }

  /** Called when the consumer stops pulling: a command still running is killed, and this waits for it to be gone. */
  async dispose(): Promise<void> {
    if (!this.finished) {
      this.discarding = true;
      this.kill("abort");
      await this.shell.kill();
    }
    this.stopTimers();
  }

  output(stream: StreamName, data: Buffer): void {
    const scanner = this.scanners[stream];
    if (scanner.found) {
      this.shell.hold(stream, data);
      return;
    }
    const { output, found, rest } = scanner.push(data);
    this.emit(stream, output);
    if (!found) return;
    // Bytes after the marker come from background jobs: they belong to whatever runs next.
    this.shell.hold(stream, rest);
    this.shell.setPaused(stream, true);
    this.settle();
  }

  control(state: ShellState): void {
    this.report = state;
    this.settle();
  }

  ended(exitCode: number): void {
    if (this.finished) return;
    for (const stream of ["stdout", "stderr"] as const) {
      if (!this.scanners[stream].found) this.emit(stream, this.scanners[stream].flush());
    }
    const code =
      this.killReason === undefined ? exitCode : this.killReason === "timeout" ? EXIT_CODE_TIMED_OUT : EXIT_CODE_KILLED;
    this.finish(code);
  }

  private settle(): void {
    // Once a kill is on its way, the end is reported when the shell is gone, whatever arrives meanwhile.
    if (this.finished || this.killReason !== undefined || this.report === undefined) return;
    if (!this.scanners.stdout.found || !this.scanners.stderr.found) return;
    this.shell.detach();
    this.finish(this.report.exitCode);
  }

  private finish(exitCode: number): void {
    this.finished = true;
    // The relay reads until its end frame; input the command never read is dropped with it.
    if (this.inputOpen) this.shell.writeInput(new Uint8Array(0), true);
    this.inputOpen = false;
    // The last look: a command whose writer hit ENOSPC or whose hog was OOM-killed often ends before a poll.
    if (this.killReason === undefined && this.limits !== undefined) {
      this.limit = this.watch?.check() ?? (exitCode === EXIT_CODE_FILE_SIZE ? "file_size" : undefined);
      // What reached the limit may live on in the background (forks, a full /tmp): the next command gets a fresh shell.
      if (this.limit !== undefined) void this.shell.kill();
    }
    // The shell got the signal too: bash may still end itself after reporting (it does when the
    // command died of SIGINT), so the next command must not be written to it. A fresh shell takes
    // over from the reported cwd and exports, as after a timeout.
    if (this.signalled) void this.shell.kill();
    this.stopTimers();
    const durationMs = Math.round(performance.now() - this.started);
    this.queue.push({ kind: "exit", exitCode, durationMs, timedOut: this.killReason === "timeout", limit: this.limit });
  }

  /** A limit seen while the command runs ends it, as a timeout does. */
  private limitReached(limit: LimitName): void {
    if (this.finished || this.killReason !== undefined) return;
    this.limit = limit;
    this.kill("limit");
  }

  private emit(stream: StreamName, data: Buffer): void {
    if (data.length === 0 || this.discarding) return;
    const limit = this.options.outputLimitBytes;
    if (limit !== undefined && this.emitted + data.length > limit) {
      const room = limit - this.emitted;
      if (room > 0) this.queue.push({ kind: "output", stream, data: data.subarray(0, room) });
      this.emitted = limit;
      this.truncated = true;
      this.discarding = true;
      this.kill("cut");
      return;
    }
    this.emitted += data.length;
    this.queue.push({ kind: "output", stream, data });
  }

  private kill(reason: KillReason): void {
    if (this.finished || this.killReason !== undefined) return;
    this.killReason = reason;
    void this.shell.kill();
  }

  /** Backpressure: a full queue pauses the pipes whose marker has not come yet. */
  private pressure(full: boolean): void {
    for (const stream of ["stdout", "stderr"] as const) {
      if (!this.scanners[stream].found) this.shell.setPaused(stream, full);
    }
  }

  private stopTimers(): void {
    // Input or a signal for a command that ended must not reach whatever runs next.
    this.options.control?.close();
    clearTimeout(this.timer);
    this.watch?.stop();
    this.options.signal?.removeEventListener("abort", this.onAbort);
  }
}
