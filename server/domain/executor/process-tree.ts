// Killing a shell and everything it started, found through /proc, and waiting until they are gone.
import { setTimeout as sleep } from "node:timers/promises";
import { processIdsNow, readProcFile } from "./proc-files.js";

/** One line of /proc/<pid>/stat, the fields we use. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  state: string;
  /** Start time in clock ticks since boot: tells a pid apart from a later process that reuses it. */
  start: string;
}

/** Reads /proc/<pid>/stat; undefined when the process is gone. */
export function readProcess(pid: number): ProcessInfo | undefined {
  const stat = readProcFile(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // comm (field 2) may hold spaces and parentheses: the fields after it start at the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { pid, state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]), start: rest[19]! };
}

/** Every process visible in /proc. */
export function listProcesses(): ProcessInfo[] {
  const all: ProcessInfo[] = [];
  for (const pid of processIdsNow()) {
    const info = readProcess(pid);
    if (info) all.push(info);
  }
  return all;
}

/**
 * The root, its descendants (ppid walk) and every member of its process group (which catches orphans of
 * a dead shell). With `rootReaped`, a process that merely reuses the root's pid is not taken for it.
 */
export function processTree(root: number, all: readonly ProcessInfo[] = listProcesses(), rootReaped = false): ProcessInfo[] {
  const children = new Map<number, ProcessInfo[]>();
  for (const info of all) children.set(info.ppid, [...(children.get(info.ppid) ?? []), info]);
  const found = new Map<number, ProcessInfo>();
  const stack = all.filter((info) => (info.pid === root && !rootReaped) || (info.pgrp === root && info.pid !== root));
  while (stack.length > 0) {
    const info = stack.pop()!;
    if (found.has(info.pid)) continue;
    found.set(info.pid, info);
    stack.push(...(children.get(info.pid) ?? []));
  }
  return [...found.values()];
}

/** True while the process exists and is not a zombie (a zombie holds nothing but its pid until it is reaped). */
export function isRunning(pid: number, start?: string): boolean {
  const info = readProcess(pid);
  return info !== undefined && (start === undefined || info.start === start) && info.state !== "Z" && info.state !== "X";
}

/**
 * SIGKILLs `root` (a process-group leader), its process group and all its descendants, then waits until
 * they are gone. Everything is frozen with SIGSTOP first, re-scanning until nothing new appears, so a
 * process cannot fork away or be reparented out of reach while the tree is being collected.
 * Limitation: a process that left the group with setsid and whose parent already exited (a double-fork
 * daemon) is no longer in the tree; only the sandbox's PID namespace catches those.
 */
export async function killProcessTree(root: number, options: { rootReaped?: boolean; waitMs?: number } = {}): Promise<void> {
  const { rootReaped = false, waitMs = 5_000 } = options;
  const frozen = new Map<number, string>();
  let groupAlive = false;
  try {
    for (let round = 0; round < 50; round++) {
      const fresh = processTree(root, listProcesses(), rootReaped).filter((info) => frozen.get(info.pid) !== info.start);
      if (fresh.length === 0) break;
      for (const info of fresh) {
        frozen.set(info.pid, info.start);
        groupAlive ||= info.pgrp === root;
        signal(info.pid, "SIGSTOP");
      }
    }
  } catch {
    // No readable /proc: the process group is all we can reach.
    groupAlive = true;
  }
  // The group first, while its stopped members keep its id from being reused by a stranger.
  if (groupAlive) signal(-root, "SIGKILL");
  for (const pid of frozen.keys()) signal(pid, "SIGKILL");
  const deadline = Date.now() + waitMs;
  for (const [pid, start] of frozen) {
    while (isRunning(pid, start) && Date.now() < deadline) await sleep(5);
  }
}

/** The clock-tick count processes started now will show in /proc/<pid>/stat (USER_HZ is 100 on Linux). */
export function nowTicks(): number {
  const uptime = readProcFile("/proc/uptime");
  return uptime === undefined ? 0 : Math.floor(Number(uptime.split(" ")[0]) * 100);
}

function commOf(pid: number): string {
  return readProcFile(`/proc/${pid}/comm`)?.trim() ?? "";
}

/**
 * Sends `name` as a terminal's Ctrl-C would reach a foreground job: to the shell and to the
 * processes of `root`'s tree that started at or after `sinceTicks` (the command's), not to
 * bubblewrap's own nor to earlier commands' background jobs. The shell reacts as bash does: it runs
 * a trap the command set, or waits for the command and, if the command died of SIGINT, ends too
 * (the session then starts a fresh shell for the next command).
 */
export function signalCommandProcesses(root: number, sinceTicks: number, name: NodeJS.Signals): void {
  let tree: ProcessInfo[];
  try {
    tree = processTree(root);
  } catch {
    // No readable /proc: the process group is all we can reach.
    signal(-root, name);
    return;
  }
  const wrappers = new Set(tree.filter((info) => commOf(info.pid) === "bwrap").map((info) => info.pid));
  // The shell: the first process that is not a bubblewrap (bwrap forks twice: its parent and the namespace's init).
  const shell = tree.find((info) => !wrappers.has(info.pid) && (info.pid === root || wrappers.has(info.ppid)));
  const command = tree.filter((info) => !wrappers.has(info.pid) && info.pid !== shell?.pid && Number(info.start) >= sinceTicks);
  // The command first: a shell that dies of the signal takes its children's pipes with it.
  for (const info of command) signal(info.pid, name);
  if (shell !== undefined) signal(shell.pid, name);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone, or never ours: nothing left to do for this one.
  }
}
