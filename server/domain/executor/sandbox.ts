// Bubblewrap: finding it, checking once that it works here (and how), and the argv that isolates a shell.
import { spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamicUsers, isRoot, type RunAs, setprivArgs } from "./dynamic-user.js";
import { type EgressFiles, egressBinds, type NetworkMode } from "./egress-listener.js";
import { BASH } from "./bash-path.js";
import { SANDBOX_GID, SANDBOX_UID, systemMounts, writeIdentityFiles } from "./sandbox-fs.js";
import type { BubblewrapSandbox, SandboxMode, SandboxStatus } from "./types.js";


/** What to isolate and what to expose. */
export interface SandboxLayout {
  workspace: string;
  /** "none": a private loopback only; "egress": the same, plus the node binary and trust files the egress helper needs; "host": the host's network. */
  network: NetworkMode;
  /** With network "egress": the trust files bound under /run/veil. */
  egressFiles?: EgressFiles;
  /** Directory holding the passwd and group stubs (see writeIdentityFiles). */
  identityDir: string;
  /** Host paths a command must never see (data dir, master key file, work dir root), wherever they are. */
  hidden: readonly string[];
}

/** bwrap arguments up to and including `--`; the environment is passed by spawn, never as argv. */
export function bubblewrapArgs(layout: SandboxLayout): string[] {
  // --unshare-all includes the user namespace: commands see uid 1000, never 0, whichever host uid runs bwrap.
  const args = ["--unshare-all", "--unshare-user", "--uid", String(SANDBOX_UID), "--gid", String(SANDBOX_GID)];
  // "egress" keeps the network namespace private too: only the listener handed to the server leads out.
  if (layout.network === "host") args.push("--share-net");
  // --die-with-parent and the PID namespace make every process in the sandbox die with bwrap,
  // even ones that called setsid; --new-session keeps them away from any controlling terminal.
  args.push("--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "veil");
  args.push(...systemMounts({ identityDir: layout.identityDir, hidden: layout.hidden, network: layout.network === "host" }));
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp");
  // Bound after the /tmp tmpfs and after any hiding tmpfs, so a workspace there stays visible on top of it.
  args.push("--bind", layout.workspace, layout.workspace);
  if (layout.network === "egress") {
    if (layout.egressFiles === undefined) throw new Error("network egress: the sandbox layout needs the trust files");
    args.push(...egressBinds(layout.egressFiles));
  }
  // The sandbox root is a tmpfs; read-only, it leaves the workspace, /tmp and /dev/shm as the only writable places.
  args.push("--remount-ro", "/", "--chdir", layout.workspace);
  args.push("--");
  return args;
}

/** The message StartConversation answers (and the server logs at start) when bubblewrap is not usable. */
export function sandboxUnavailableMessage(problem: string): string {
  return (
    `commands are disabled: they must run in bubblewrap, which is not usable on this server (${problem}). ` +
    "Install it (Debian/Ubuntu: apt-get install bubblewrap) and restart the server, or restart it with " +
    "--sandbox off to run commands without a sandbox: they then see the host's file system, network and " +
    "processes as an ordinary user would (as root, each conversation still gets its own unprivileged uid)."
  );
}

const probes = new Map<string, Promise<SandboxStatus>>();

/**
 * Which sandbox commands run in. "required" (also "auto"): bubblewrap when it works here, else
 * `unavailable` with the reason; "off": none. `bwrap` is a configured path, else PATH is searched.
 * The check runs once per process and path.
 */
export async function detectSandbox(mode: SandboxMode, options: { bwrap?: string | undefined } = {}): Promise<SandboxStatus> {
  if (mode === "off") return { kind: "none" };
  const path = options.bwrap ?? findBwrap();
  if (path === undefined) return { kind: "unavailable", problem: "bwrap not found on PATH, /usr/bin or /usr/local/bin" };
  let probe = probes.get(path);
  if (probe === undefined) {
    probe = probeBubblewrap(path);
    probes.set(path, probe);
  }
  return probe;
}

function findBwrap(): string | undefined {
  // The server's PATH only locates the binary; it is never passed on to a shell.
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/bin", "/usr/local/bin", "/bin"];
  return dirs.filter((dir) => dir.startsWith("/")).map((dir) => join(dir, "bwrap")).find((path) => existsSync(path));
}

/**
 * Runs `true` with the real layout, so a kernel without user or network namespaces is caught before
 * the first command. As root it first tries bwrap as an unprivileged uid (an unprivileged user
 * namespace); only when that fails does bwrap run as root, mapping root to the sandbox's uid 1000.
 */
async function probeBubblewrap(path: string): Promise<SandboxStatus> {
  if (!existsSync(path)) return { kind: "unavailable", problem: `${path} does not exist` };
  if (!isRoot()) {
    const problem = await tryBwrap(path, undefined);
    return problem === undefined ? { kind: "bubblewrap", bwrap: path, asUser: false } : { kind: "unavailable", problem };
  }
  const users = new DynamicUsers();
  const user = users.allocate();
  try {
    const unprivileged = await tryBwrap(path, user);
    if (unprivileged === undefined) return { kind: "bubblewrap", bwrap: path, asUser: true };
    const asRoot = await tryBwrap(path, undefined);
    if (asRoot === undefined) return { kind: "bubblewrap", bwrap: path, asUser: false, fallback: unprivileged };
    return { kind: "unavailable", problem: asRoot };
  } finally {
    users.release(user);
  }
}

/** One probe run of `bwrap ... bash -c true`, as `user` when given; resolves to a problem, or undefined when it worked. */
async function tryBwrap(path: string, user: RunAs | undefined): Promise<string | undefined> {
  const workspace = mkdtempSync(join(tmpdir(), "veil-bwrap-probe-"));
  try {
    if (user !== undefined) chownSync(workspace, user.uid, user.gid);
    const identityDir = join(workspace, ".identity");
    writeIdentityFiles(identityDir, workspace);
    const sandbox: BubblewrapSandbox = { kind: "bubblewrap", bwrap: path, asUser: user !== undefined };
    const argv = [...(user !== undefined ? setprivArgs(user) : []), sandbox.bwrap, ...bubblewrapArgs({ workspace, network: "none", identityDir, hidden: [] })];
    const { code, stderr } = await runBriefly(argv, 10_000);
    return code === 0 ? undefined : `${path} failed${user !== undefined ? " as an unprivileged user" : ""} (${code}): ${stderr.trim().slice(0, 300) || "no message"}`;
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }
}

function runBriefly(argv: string[], timeoutMs: number): Promise<{ code: number | string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, [...argv.slice(1), BASH, "-c", "true"], { env: { PATH: "/usr/bin:/bin" }, stdio: ["ignore", "ignore", "pipe"], timeout: timeoutMs });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (text: string) => {
      stderr += text;
    });
    child.on("error", (err) => resolve({ code: err.message, stderr }));
    child.on("close", (code, signal) => resolve({ code: code ?? signal ?? "unknown", stderr }));
  });
}
