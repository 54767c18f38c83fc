// Per-conversation cgroups: detecting once what the server may use (v2 delegated, else v1 memory+pids), and one cgroup's life.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type MountEntry, readMountInfo } from "../mount-info.js";

/** Where conversation cgroups are created: v2 has one directory for both controllers, v1 one per hierarchy. */
export type CgroupSupport = { version: 2; parent: string } | { version: 1; memoryParent: string; pidsParent: string };

/** What detection found: the support, or why there is none (logged at start). */
export interface CgroupDetection {
  support: CgroupSupport | undefined;
  reason: string;
}

/** Kill counters of one cgroup; a rise during a command means it reached a limit. */
export interface CgroupCounters {
  /** Processes the kernel's OOM killer killed in this cgroup. */
  oomKills: number;
  /** Forks refused because pids.max was reached. */
  pidsMax: number;
}

let detected: CgroupDetection | undefined;

/** The one cgroup check of this process: v2 with memory and pids delegated, else writable v1 memory and pids, else none. */
export function detectCgroups(): CgroupDetection {
  detected ??= detect();
  return detected;
}

function detect(): CgroupDetection {
  let memberships: Map<string, string>;
  let mounts: MountEntry[];
  try {
    memberships = readMemberships();
    mounts = readMounts();
  } catch (error) {
    return { support: undefined, reason: `cannot read /proc: ${(error as Error).message}` };
  }
  const reasons: string[] = [];
  const v2 = tryV2(memberships, mounts);
  if (typeof v2 !== "string") return { support: sweep(v2), reason: "" };
  reasons.push(`v2: ${v2}`);
  const v1 = tryV1(memberships, mounts);
  if (typeof v1 !== "string") return { support: sweep(v1), reason: "" };
  reasons.push(`v1: ${v1}`);
  return { support: undefined, reason: reasons.join("; ") };
}

/** Controller list ("" for the v2 line, "memory", "pids", ...) to the server's cgroup path in that hierarchy. */
function readMemberships(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync("/proc/self/cgroup", "utf8").split("\n")) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    for (const controller of match[1]!.split(",")) out.set(controller, match[2]!);
  }
  return out;
}

function readMounts(): MountEntry[] {
  return readMountInfo().filter((m) => m.fsType.startsWith("cgroup"));
}

/** The directory of the server's own cgroup in a mounted hierarchy, or undefined when it is not visible there. */
function ownDirectory(mount: MountEntry, path: string): string | undefined {
  if (mount.root === "/") return join(mount.mountPoint, path);
  if (path === mount.root || path.startsWith(`${mount.root}/`)) return join(mount.mountPoint, path.slice(mount.root.length));
  return undefined;
}

function tryV2(memberships: Map<string, string>, mounts: MountEntry[]): CgroupSupport | string {
  const path = memberships.get("");
  const mount = mounts.find((m) => m.fsType === "cgroup2");
  if (path === undefined || mount === undefined) return "not mounted";
  const dir = ownDirectory(mount, path);
  if (dir === undefined) return "the server's cgroup is not visible";
  const available = words(join(dir, "cgroup.controllers"));
  if (!available.includes("memory") || !available.includes("pids")) return `memory and pids not delegated to ${dir}`;
  try {
    enableSubtree(dir);
    probe({ version: 2, parent: dir });
    return { version: 2, parent: dir };
  } catch (error) {
    return `${dir}: ${(error as Error).message}`;
  }
}

/**
 * Turns memory and pids on for the server's children. A v2 cgroup holding processes cannot do that (the
 * no-internal-processes rule, e.g. under systemd's Delegate=yes), so a server alone in it first moves
 * itself into a leaf `veil-server`.
 */
function enableSubtree(dir: string): void {
  const control = join(dir, "cgroup.subtree_control");
  if (words(control).includes("memory") && words(control).includes("pids")) return;
  try {
    writeFileSync(control, "+memory +pids");
    return;
  } catch (error) {
    const members = readFileSync(join(dir, "cgroup.procs"), "utf8").trim().split("\n");
    if ((error as NodeJS.ErrnoException).code !== "EBUSY" || members.length !== 1 || members[0] !== String(process.pid)) throw error;
  }
  const leaf = join(dir, "veil-server");
  mkdirSync(leaf, { recursive: true });
  writeFileSync(join(leaf, "cgroup.procs"), String(process.pid));
  writeFileSync(control, "+memory +pids");
}

function tryV1(memberships: Map<string, string>, mounts: MountEntry[]): CgroupSupport | string {
  const dirs: Record<"memory" | "pids", string | undefined> = { memory: undefined, pids: undefined };
  for (const controller of ["memory", "pids"] as const) {
    const path = memberships.get(controller);
    const mount = mounts.find((m) => m.fsType === "cgroup" && m.superOptions.includes(controller));
    if (path === undefined || mount === undefined) return `${controller} controller not mounted`;
    dirs[controller] = ownDirectory(mount, path);
    if (dirs[controller] === undefined) return `the server's ${controller} cgroup is not visible`;
  }
  const support: CgroupSupport = { version: 1, memoryParent: dirs.memory!, pidsParent: dirs.pids! };
  try {
    probe(support);
    return support;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Creates, limits and removes a throwaway child, so a read-only or refusing hierarchy is caught at start. */
function probe(support: CgroupSupport): void {
  const cgroup = ConversationCgroup.create(support, "probe", { maxProcesses: 64, memoryBytes: 64 * 1024 * 1024 });
  cgroup.counters();
  for (const dir of cgroup.dirs) rmdirSync(dir);
}

/** Removes the empty cgroups a crashed server left behind: `veil-<pid>-*` whose server pid is gone. */
function sweep(support: CgroupSupport): CgroupSupport {
  const parents = support.version === 2 ? [support.parent] : [support.memoryParent, support.pidsParent];
  for (const parent of parents) {
    let names: string[];
    try {
      names = readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      const pid = /^veil-(\d+)-/.exec(name)?.[1];
      if (pid === undefined || pid === String(process.pid) || existsSync(`/proc/${pid}`)) continue;
      try {
        rmdirSync(join(parent, name));
      } catch {
        // Still holds a process (or is not ours to remove): left alone.
      }
    }
  }
  return support;
}

function words(path: string): string[] {
  try {
    return readFileSync(path, "utf8").trim().split(/\s+/);
  } catch {
    return [];
  }
}

/** One conversation's cgroup (`veil-<server pid>-<name>` under the server's own): its limits, the files to join it, its counters. */
export class ConversationCgroup {
  private constructor(
    private readonly support: CgroupSupport,
    /** The cgroup directories: one for v2, memory then pids for v1. */
    readonly dirs: readonly string[],
  ) {}

  /** Creates `veil-<server pid>-<name>` and writes its limits; throws when the kernel refuses. */
  static create(support: CgroupSupport, name: string, limits: { maxProcesses: number; memoryBytes: number }): ConversationCgroup {
    // The server's pid in the name lets the next start tell a crashed server's leftovers from a live server's.
    const leaf = `veil-${process.pid}-${name.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
    const dirs = support.version === 2 ? [join(support.parent, leaf)] : [join(support.memoryParent, leaf), join(support.pidsParent, leaf)];
    for (const dir of dirs) mkdirSync(dir, { recursive: true });
    const cgroup = new ConversationCgroup(support, dirs);
    const memory = String(limits.memoryBytes);
    if (support.version === 2) {
      const [dir] = dirs as [string];
      writeFileSync(join(dir, "memory.max"), memory);
      // No swapping past the limit, and an OOM kills the whole command tree, not one process of it.
      writeIfPresent(join(dir, "memory.swap.max"), "0");
      writeIfPresent(join(dir, "memory.oom.group"), "1");
      writeFileSync(join(dir, "pids.max"), String(limits.maxProcesses));
    } else {
      const [memoryDir, pidsDir] = dirs as [string, string];
      writeFileSync(join(memoryDir, "memory.limit_in_bytes"), memory);
      // memsw (memory plus swap) must be at least the memory limit, so it is written second.
      writeIfPresent(join(memoryDir, "memory.memsw.limit_in_bytes"), memory);
      writeFileSync(join(pidsDir, "pids.max"), String(limits.maxProcesses));
    }
    return cgroup;
  }

  /** The cgroup.procs files a process writes its pid into to join (see wrapCgroupJoin). */
  get procsFiles(): string[] {
    return this.dirs.map((dir) => join(dir, "cgroup.procs"));
  }

  /** Current kill counters; a file that cannot be read counts 0. */
  counters(): CgroupCounters {
    const [memoryDir, pidsDir] = this.support.version === 2 ? [this.dirs[0]!, this.dirs[0]!] : [this.dirs[0]!, this.dirs[1]!];
    const memoryFile = this.support.version === 2 ? "memory.events" : "memory.oom_control";
    return { oomKills: counter(join(memoryDir, memoryFile), "oom_kill"), pidsMax: counter(join(pidsDir, "pids.events"), "max") };
  }

  /** Removes the cgroup once its processes are gone (retrying briefly while the last ones exit). */
  async remove(): Promise<void> {
    for (const dir of this.dirs) {
      for (let attempt = 0; existsSync(dir); attempt++) {
        try {
          rmdirSync(dir);
        } catch (error) {
          if (attempt >= 40) throw error;
          await sleep(25);
        }
      }
    }
  }
}

function writeIfPresent(path: string, value: string): void {
  if (existsSync(path)) writeFileSync(path, value);
}

/** Reads `key N` from a flat-keyed cgroup file. */
function counter(path: string, key: string): number {
  try {
    const match = new RegExp(`^${key} (\\d+)$`, "m").exec(readFileSync(path, "utf8"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Prefixes argv with a tiny root shell that writes its own pid into each cgroup.procs file and then execs
 * the rest, so the command joins the cgroup before it can fork anything. Exit 125 when joining fails.
 */
export function wrapCgroupJoin(argv: readonly string[], procsFiles: readonly string[]): string[] {
  if (procsFiles.length === 0) return [...argv];
  const script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';
  return ["/bin/sh", "-c", script, "veil-cgroup-join", ...procsFiles, "--", ...argv];
}
