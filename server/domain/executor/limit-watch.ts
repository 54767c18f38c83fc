// Watches one running command for a reached limit: cgroup kill counters and full filesystems, polled while it runs and checked at its end.
import { readlinkSync } from "node:fs";
import { join } from "node:path";
import type { ConversationCgroup, CgroupCounters } from "./cgroup.js";
import type { LimitName } from "./limits.js";
import { processTree, readProcess } from "./process-tree.js";
import { diskUsage, filesystemFull } from "./workspace-mount.js";

/** What a session's commands are watched for. */
export interface WatchedLimits {
  cgroup: ConversationCgroup | undefined;
  workspace: string;
  /** True when the workspace is its own (size-capped) filesystem; else the watchdog measures it. */
  workspaceMounted: boolean;
  diskBytes: number;
  /** True when the shell runs in bubblewrap, whose /tmp and /dev/shm are size-capped tmpfs. */
  sandboxed: boolean;
}

// Cheap checks (two small cgroup files, a few statfs) this often while a command runs.
const POLL_MS = 200;
// Walking the workspace is dearer: at most this often, never two at once, and never more than a fifth of the time.
const MEASURE_MS = 250;

/** One filesystem to watch, and whether it was already full when the command started (then it did not fill it). */
interface FullCheck {
  path: string;
  fullAtStart: boolean;
}

/** Polls from construction until stop(); calls `onLimit` at most once. */
export class LimitWatch {
  private readonly start: CgroupCounters | undefined;
  private readonly filesystems: FullCheck[];
  private readonly timer: NodeJS.Timeout;
  private measured: { baseline: number; last: number } | undefined;
  private measuring = false;
  private nextMeasure = 0;
  private reported = false;

  constructor(
    private readonly limits: WatchedLimits,
    shellPid: number | undefined,
    private readonly onLimit: (limit: LimitName) => void,
  ) {
    this.start = limits.cgroup?.counters();
    const paths = limits.workspaceMounted ? [limits.workspace] : [];
    const root = limits.sandboxed && shellPid !== undefined ? sandboxRoot(shellPid) : undefined;
    if (root !== undefined) paths.push(join(root, "tmp"), join(root, "dev/shm"));
    this.filesystems = paths.map((path) => ({ path, fullAtStart: filesystemFull(path) === true }));
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
    if (!limits.workspaceMounted) void this.measure();
  }

  /** The limit reached since the command started, if any (synchronous: used once more at the command's end). */
  check(): LimitName | undefined {
    if (this.start !== undefined) {
      const now = this.limits.cgroup!.counters();
      if (now.oomKills > this.start.oomKills) return "memory";
      if (now.pidsMax > this.start.pidsMax) return "processes";
    }
    if (this.filesystems.some((fs) => !fs.fullAtStart && filesystemFull(fs.path) === true)) return "disk";
    // Over the cap and grown since the start: a command that only cleans up an overfull workspace is let be.
    const m = this.measured;
    if (m !== undefined && m.last > this.limits.diskBytes && m.last > m.baseline) return "disk";
    return undefined;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private poll(): void {
    if (this.reported) return;
    const limit = this.check();
    if (limit !== undefined) {
      this.reported = true;
      this.stop();
      this.onLimit(limit);
      return;
    }
    if (!this.limits.workspaceMounted && Date.now() >= this.nextMeasure) void this.measure();
  }

  /** The watchdog for a workspace that is no filesystem of its own: adds up its files. */
  private async measure(): Promise<void> {
    if (this.measuring) return;
    this.measuring = true;
    const started = Date.now();
    try {
      const used = await diskUsage(this.limits.workspace, this.limits.diskBytes);
      this.measured = { baseline: this.measured?.baseline ?? used, last: used };
    } finally {
      this.measuring = false;
      this.nextMeasure = Date.now() + Math.max(MEASURE_MS, 4 * (Date.now() - started));
    }
  }
}

/** Shell (bwrap) pid to the pid of its child inside the sandbox: found by a /proc scan once per shell, not per command. */
const insiders = new Map<number, number>();

/** `/proc/<pid>/root` of a process inside the sandbox (a descendant of bwrap in another mount namespace), to reach its /tmp. */
function sandboxRoot(shellPid: number): string | undefined {
  const known = insiders.get(shellPid);
  if (known !== undefined && readProcess(known)?.ppid === shellPid) return `/proc/${known}/root`;
  insiders.delete(shellPid);
  let own: string;
  try {
    own = readlinkSync("/proc/self/ns/mnt");
  } catch {
    return undefined;
  }
  for (const info of processTree(shellPid)) {
    try {
      if (readlinkSync(`/proc/${info.pid}/ns/mnt`) === own) continue;
      // Dead shells' entries go when the map grows: a pid is checked against its parent before it is trusted.
      if (insiders.size > 4096) insiders.clear();
      if (info.ppid === shellPid) insiders.set(shellPid, info.pid);
      return `/proc/${info.pid}/root`;
    } catch {
      // Gone meanwhile, or not ours to read: try the next one.
    }
  }
  return undefined;
}

// Between commands only the cgroup counters are read, and less often.
const IDLE_POLL_MS = 500;

/**
 * Watches a session between commands: a background job (a fork bomb's `:|:&` returns at once) that reaches the
 * processes or memory limit gets its shell killed, so it does not spin at the cap until the next command.
 */
export class IdleWatch {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cgroup: ConversationCgroup,
    private readonly onLimit: () => void,
  ) {}

  /** Starts watching from the current counters. */
  start(): void {
    this.stop();
    const start = this.cgroup.counters();
    this.timer = setInterval(() => {
      const now = this.cgroup.counters();
      if (now.oomKills === start.oomKills && now.pidsMax === start.pidsMax) return;
      this.stop();
      this.onLimit();
    }, IDLE_POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
