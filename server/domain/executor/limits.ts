// Per-conversation resource limits: their shape, the names command_exited reports, the rlimit and tmpfs argv wrappers, and which mechanisms apply here.
import { existsSync } from "node:fs";
import { detectCgroups } from "./cgroup.js";
import { canMountTmpfs } from "./workspace-mount.js";
import { isRoot } from "./dynamic-user.js";

/** Which limit ended a command, as `command_exited.limit` says it. */
export type LimitName = "processes" | "memory" | "disk" | "file_size";

/** The limits of one conversation (server flags). */
export interface ResourceLimits {
  /** Processes and threads at once (cgroup pids.max; RLIMIT_NPROC as a backstop for a dedicated uid). */
  maxProcesses: number;
  /** Memory of the conversation's processes, tmpfs pages they wrote included (cgroup only). */
  memoryBytes: number;
  /** Size of the workspace, and separately of /tmp and /dev/shm in the sandbox. */
  diskBytes: number;
  /** Largest file a process may write (RLIMIT_FSIZE): past it the writer gets SIGXFSZ. */
  fileSizeBytes: number;
}

/** A process killed by SIGXFSZ (signal 25) exits with this status in bash. */
export const EXIT_CODE_FILE_SIZE = 128 + 25;

/** util-linux prlimit, which sets rlimits on itself and execs the rest. */
const PRLIMIT = ["/usr/bin/prlimit", "/bin/prlimit"].find((path) => existsSync(path));

/** The rlimits set on a shell: RLIMIT_NPROC only when `processes` is given (see rlimitProcesses). */
export interface RlimitSpec {
  processes?: number;
  fileSizeBytes: number;
}

/** What ShellProcess.start wraps a shell in. */
export interface LaunchLimits {
  rlimits: RlimitSpec;
  /** Size of the sandbox's /tmp and /dev/shm. */
  tmpfsBytes: number;
  /** cgroup.procs files the shell joins before it starts (none without a cgroup). */
  cgroupProcs: readonly string[];
}

// With a cgroup, RLIMIT_NPROC sits this far above pids.max: the cgroup, whose refusals are counted and reported, bites first.
const NPROC_MARGIN = 16;

/**
 * RLIMIT_NPROC counts every process of the uid, system-wide, and never applies to root. It is set when
 * the server is root: commands then run as root (exempt, so the cgroup limits) or as a uid of their own
 * (where it is exact). A non-root server's commands share its uid, whose other processes would count.
 */
export function rlimitProcesses(limits: ResourceLimits, cgroup: boolean): number | undefined {
  if (!isRoot()) return undefined;
  return cgroup ? limits.maxProcesses + NPROC_MARGIN : limits.maxProcesses;
}

/**
 * Prefixes argv with `prlimit` setting RLIMIT_FSIZE, RLIMIT_CORE=0 and maybe RLIMIT_NPROC (soft = hard, so the
 * command cannot raise them). RLIMIT_AS is not set: V8 and JVMs reserve far more address space than they use
 * (`node -e 1` dies under 256 MiB), so memory is left to the cgroup. Unchanged when prlimit is missing.
 */
export function wrapRlimits(argv: readonly string[], spec: RlimitSpec): string[] {
  if (PRLIMIT === undefined) return [...argv];
  const flags = [`--fsize=${spec.fileSizeBytes}:${spec.fileSizeBytes}`, "--core=0"];
  if (spec.processes !== undefined) flags.unshift(`--nproc=${spec.processes}:${spec.processes}`);
  return [PRLIMIT, ...flags, "--", ...argv];
}

/**
 * Gives bwrap's /tmp a size and adds a /dev/shm of the same size (bwrap's --dev leaves it a plain directory of
 * the /dev tmpfs, which has none). Throws when the argv has no `--tmpfs /tmp` or `--dev /dev`, so a change of the
 * sandbox layout cannot drop the caps silently.
 */
export function withTmpfsCaps(bwrapArgs: readonly string[], bytes: number): string[] {
  const args = [...bwrapArgs];
  const size = String(bytes);
  const tmp = pairIndex(args, "--tmpfs", "/tmp");
  args.splice(tmp, 0, "--size", size);
  const dev = pairIndex(args, "--dev", "/dev");
  args.splice(dev + 2, 0, "--size", size, "--tmpfs", "/dev/shm");
  return args;
}

function pairIndex(args: readonly string[], flag: string, value: string): number {
  const end = args.indexOf("--");
  const index = args.findIndex((arg, i) => arg === flag && args[i + 1] === value && (end === -1 || i < end));
  if (index === -1) throw new Error(`sandbox argv has no ${flag} ${value} to cap`);
  return index;
}

/** Which mechanisms enforce each limit on this machine (logged once at start). */
export interface LimitMechanisms {
  cgroup: "v2" | "v1" | "none";
  processes: string;
  memory: string;
  workspace: string;
  tmp: string;
  fileSize: string;
  /** Why there is no cgroup, when there is none. */
  cgroupProblem?: string;
}

/** Detects (once per process: cgroups, tmpfs mounts) and describes what enforces each limit. */
export function limitMechanisms(): LimitMechanisms {
  const { support, reason } = detectCgroups();
  const cgroup = support === undefined ? "none" : support.version === 2 ? "v2" : "v1";
  const nproc = PRLIMIT !== undefined && isRoot() ? "RLIMIT_NPROC" : undefined;
  const pids = cgroup === "none" ? undefined : `cgroup ${cgroup} pids.max`;
  return {
    cgroup,
    processes: [pids, nproc].filter(Boolean).join(" + ") || "not limited (no cgroup; RLIMIT_NPROC would count the server's own uid)",
    memory: cgroup === "none" ? "not limited (no cgroup; RLIMIT_AS breaks V8 and JVMs)" : `cgroup ${cgroup} memory limit`,
    workspace: canMountTmpfs() ? "size-capped tmpfs" : "watchdog measuring the workspace (every 250 ms or more) while a command runs",
    tmp: "size-capped tmpfs in bubblewrap",
    fileSize: PRLIMIT !== undefined ? "RLIMIT_FSIZE" : "not limited (prlimit missing)",
    ...(support === undefined ? { cgroupProblem: reason } : {}),
  };
}
