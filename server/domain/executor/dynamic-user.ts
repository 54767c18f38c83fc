// Per-conversation unprivileged uid/gid (like systemd's DynamicUser): allocation, release, and killing all its processes.
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { processIdsNow, readProcFile, statusLine } from "./proc-files.js";
import { readProcess } from "./process-tree.js";
import { runSystemCommand } from "./system-commands.js";

/**
 * The range ids are taken from. Not systemd's 61184-65519: systemd hands those to its own
 * DynamicUser services without looking at our processes, so the two could meet. Not below 2^20
 * either: /etc/subuid ranges (100000 + 65536 per user) and image uids live there. Just below
 * 2^31, it stays clear of (uid_t)-1 and of tools that treat ids as signed 32-bit numbers.
 */
export const DYNAMIC_UID_BASE = 2_147_000_000;
export const DYNAMIC_UID_COUNT = 65_536;

/** util-linux setpriv: drops to a uid/gid before exec, with no supplementary groups or capabilities left. */
export const SETPRIV = existsSync("/usr/bin/setpriv") ? "/usr/bin/setpriv" : "/bin/setpriv";

/** A uid/gid pair commands run as. */
export interface RunAs {
  uid: number;
  gid: number;
}

/** True when this process can switch users (and so must, for commands). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The argv prefix that runs the rest of the argv as `user`, never able to regain root (no setuid, no capabilities). */
export function setprivArgs(user: RunAs): string[] {
  return [
    SETPRIV,
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
  ];
}

/**
 * Claims across Veil servers on this machine live in one root-only directory: a file per id holding
 * the claiming server's pid and start time, so a crashed server's ids are taken back.
 */
function claimsDir(): string {
  const dir = existsSync("/run") ? "/run/veil-uids" : join(tmpdir(), "veil-uids");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  if (!stat.isDirectory() || stat.uid !== 0 || (stat.mode & 0o022) !== 0) throw new Error(`${dir} must be a directory owned by root and writable by it only`);
  return dir;
}

/** Hands out ids from the dynamic range that no account, group, subordinate range, live process or other server uses. */
export class DynamicUsers {
  private readonly mine = new Set<number>();
  private readonly dir = claimsDir();
  private readonly me = `${process.pid} ${readProcess(process.pid)?.start ?? ""}`;

  /** A fresh uid (with the same number as gid); throws when the range is exhausted. */
  allocate(): RunAs {
    const taken = idsInUse();
    const offset = Math.floor(Math.random() * DYNAMIC_UID_COUNT);
    for (let i = 0; i < DYNAMIC_UID_COUNT; i++) {
      const id = DYNAMIC_UID_BASE + ((offset + i) % DYNAMIC_UID_COUNT);
      if (this.mine.has(id) || taken.has(id) || !this.claim(id)) continue;
      this.mine.add(id);
      return { uid: id, gid: id };
    }
    throw new Error("no free uid left in the dynamic range");
  }

  /** Gives an id back; call only after `killUserProcesses` found none left. */
  release(user: RunAs): void {
    if (!this.mine.delete(user.uid)) return;
    try {
      unlinkSync(join(this.dir, String(user.uid)));
    } catch {
      // Already gone: nothing to give back.
    }
  }

  private claim(id: number): boolean {
    const path = join(this.dir, String(id));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, "wx", 0o600);
        writeSync(fd, this.me);
        closeSync(fd);
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      if (ownerAlive(path)) return false;
      try {
        unlinkSync(path);
      } catch {
        return false;
      }
    }
    return false;
  }
}

/**
 * Kills the processes of ids whose claiming server is gone (it crashed: without the sandbox's PID
 * namespace, nothing else ends a dead server's commands), then frees the ids. Call at start.
 */
export async function reapStaleUsers(): Promise<number[]> {
  const dir = claimsDir();
  const reaped: number[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!/^\d+$/.test(name) || ownerAlive(path)) continue;
    const id = Number(name);
    await killUserProcesses({ uid: id, gid: id });
    // Servers starting at the same time reap the same stale claims: one of them removes it first.
    rmSync(path, { force: true });
    reaped.push(id);
  }
  return reaped;
}

function ownerAlive(path: string): boolean {
  let pid: number;
  let start: string | undefined;
  try {
    [pid, start] = ((s) => [Number(s[0]), s[1]] as const)(readFileSync(path, "utf8").split(" "));
  } catch {
    return true;
  }
  const info = readProcess(pid);
  return info !== undefined && (start === undefined || start === "" || info.start === start);
}

/** Every uid and gid named in the account databases, subordinate id ranges, or held by a live process. */
function idsInUse(): Set<number> {
  const ids = new Set<number>();
  for (const file of ["/etc/passwd", "/etc/group"]) {
    for (const line of readOrEmpty(file).split("\n")) {
      const fields = line.split(":");
      if (fields.length > 3) ids.add(Number(fields[2]));
      if (file === "/etc/passwd" && fields.length > 3) ids.add(Number(fields[3]));
    }
  }
  for (const file of ["/etc/subuid", "/etc/subgid"]) {
    for (const line of readOrEmpty(file).split("\n")) {
      const [, start, count] = line.split(":").map(Number);
      if (start === undefined || count === undefined || !(count > 0)) continue;
      const from = Math.max(start, DYNAMIC_UID_BASE);
      const to = Math.min(start + count, DYNAMIC_UID_BASE + DYNAMIC_UID_COUNT);
      for (let id = from; id < to; id++) ids.add(id);
    }
  }
  for (const pid of processIdsNow()) for (const id of processIds(pid)) ids.add(id);
  return ids;
}

/** A process's real, effective, saved and fs uids and gids; empty when it is gone or a zombie. */
function processIds(pid: number): number[] {
  const status = liveStatus(pid);
  if (status === undefined) return [];
  return [...idsOf(status, "Uid"), ...idsOf(status, "Gid")];
}

/** Live (non-zombie) processes with `uid` as any of their uids. */
export function processesOf(uid: number): number[] {
  return processIdsNow().filter((pid) => {
    const status = liveStatus(pid);
    return status !== undefined && idsOf(status, "Uid").includes(uid);
  });
}

/** A process's /proc status, undefined when it is gone or a zombie (which holds nothing but its pid). */
function liveStatus(pid: number): string | undefined {
  const status = readProcFile(`/proc/${pid}/status`);
  const state = status === undefined ? undefined : statusLine(status, "State");
  return state === undefined || state.startsWith("Z") ? undefined : status;
}

/** The four ids (real, effective, saved, fs) of a status line such as `Uid:`. */
function idsOf(status: string, key: "Uid" | "Gid"): number[] {
  const line = statusLine(status, key);
  return line === undefined ? [] : line.split(/\s+/).map(Number);
}

/**
 * SIGKILLs every process of `user`, repeating until none is left: this also catches what left the
 * shell's process tree (a `setsid` double fork). Each round first sends kill(-1) as that user, which
 * the kernel delivers to all of the user's processes at once, so a forking process cannot outrun it.
 */
export async function killUserProcesses(user: RunAs, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = processesOf(user.uid);
    if (pids.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes of uid ${user.uid} survived SIGKILL: ${pids.slice(0, 10).join(", ")}`);
    await killAllAs(user);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    await sleep(10);
  }
}

/** Runs bash's `kill -KILL -1` as the user: the kernel's own "every process this user may signal", minus the caller. */
async function killAllAs(user: RunAs): Promise<void> {
  await runSystemCommand([...setprivArgs(user), "/bin/bash", "-c", "kill -KILL -1 2>/dev/null; true"], 5_000);
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
