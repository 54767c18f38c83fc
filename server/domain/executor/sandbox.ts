// Bubblewrap: finding it, checking once that it works here, and the argv that isolates a shell.
import { spawn } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SandboxMode } from "./types.js";

/** The shell every session runs, inside the sandbox or not. */
export const BASH = existsSync("/bin/bash") ? "/bin/bash" : "/usr/bin/bash";
const BASH_ARGS = ["--noprofile", "--norc"];

/** Top-level system paths that are symlinks into /usr on merged-/usr systems and directories elsewhere. */
const SYSTEM_DIRS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/** Files under the read-only /etc that still must not be readable in the sandbox. */
const HIDDEN_ETC_FILES = ["/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-"];

/** What to isolate and what to expose. */
export interface SandboxLayout {
  workspace: string;
  network: boolean;
}

/** bwrap arguments up to and including the shell's argv; the environment is passed by spawn, never as argv. */
export function bubblewrapArgs(layout: SandboxLayout): string[] {
  const args = ["--unshare-all"];
  if (layout.network) args.push("--share-net");
  // --die-with-parent and the PID namespace make every process in the sandbox die with bwrap,
  // even ones that called setsid; --new-session keeps them away from any controlling terminal.
  args.push("--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "veil");
  args.push("--ro-bind", "/usr", "/usr");
  for (const dir of SYSTEM_DIRS) {
    const stat = lstatOrUndefined(dir);
    if (stat?.isSymbolicLink()) args.push("--symlink", readlinkSync(dir), dir);
    else if (stat?.isDirectory()) args.push("--ro-bind", dir, dir);
  }
  args.push("--ro-bind", "/etc", "/etc");
  for (const file of [...HIDDEN_ETC_FILES, ...sshHostKeys()]) {
    if (existsSync(file)) args.push("--ro-bind", "/dev/null", file);
  }
  if (layout.network) args.push("--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve");
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp");
  // Bound after the /tmp tmpfs so a workspace under /tmp stays visible on top of it.
  args.push("--bind", layout.workspace, layout.workspace);
  // The sandbox root is a tmpfs; read-only, it leaves the workspace, /tmp and /dev/shm as the only writable places.
  args.push("--remount-ro", "/", "--chdir", layout.workspace);
  args.push("--", BASH, ...BASH_ARGS);
  return args;
}

/** The argv[1..] for an unsandboxed shell. */
export function plainShellArgs(): string[] {
  return [...BASH_ARGS];
}

interface Probe {
  path: string | undefined;
  problem: string;
}

let probe: Promise<Probe> | undefined;

/** The one bwrap check of this process, started on first use. */
function probeOnce(): Promise<Probe> {
  probe ??= probeBubblewrap();
  return probe;
}

/**
 * Which sandbox commands run in. "auto": bubblewrap when `bwrap` is installed and works here, else none;
 * "off": none; "required": bubblewrap or an Error saying why not. The check runs once per process.
 */
export async function detectSandbox(mode: SandboxMode): Promise<{ kind: "bubblewrap" | "none" }> {
  if (mode === "off") return { kind: "none" };
  const result = await probeOnce();
  if (result.path !== undefined) return { kind: "bubblewrap" };
  if (mode === "required") throw new Error(`sandbox "required" but bubblewrap is not usable: ${result.problem}`);
  return { kind: "none" };
}

/** Path of a working bwrap; throws when there is none. */
export async function bubblewrapPath(): Promise<string> {
  const result = await probeOnce();
  if (result.path === undefined) throw new Error(`bubblewrap is not usable: ${result.problem}`);
  return result.path;
}

function findBwrap(): string | undefined {
  // The server's PATH only locates the binary; it is never passed on to a shell.
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/bin", "/usr/local/bin", "/bin"];
  return dirs.filter((dir) => dir.startsWith("/")).map((dir) => join(dir, "bwrap")).find((path) => existsSync(path));
}

/** Runs `true` with the real layout once, so a kernel without user or network namespaces is caught before the first command. */
async function probeBubblewrap(): Promise<Probe> {
  const path = findBwrap();
  if (path === undefined) return { path: undefined, problem: "bwrap not found (install the bubblewrap package)" };
  const workspace = mkdtempSync(join(tmpdir(), "veil-bwrap-probe-"));
  try {
    const args = bubblewrapArgs({ workspace, network: false });
    args.splice(args.indexOf("--") + 1, Number.POSITIVE_INFINITY, BASH, "-c", "true");
    const { code, stderr } = await runBriefly(path, args, 10_000);
    return code === 0 ? { path, problem: "" } : { path: undefined, problem: `bwrap failed (${code}): ${stderr.trim().slice(0, 500)}` };
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }
}

function runBriefly(path: string, args: string[], timeoutMs: number): Promise<{ code: number | string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(path, args, { env: { PATH: "/usr/bin:/bin" }, stdio: ["ignore", "ignore", "pipe"], timeout: timeoutMs });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (text: string) => {
      stderr += text;
    });
    child.on("error", (err) => resolve({ code: err.message, stderr }));
    child.on("close", (code, signal) => resolve({ code: code ?? signal ?? "unknown", stderr }));
  });
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function sshHostKeys(): string[] {
  try {
    return readdirSync("/etc/ssh")
      .filter((name) => name.startsWith("ssh_host_") && name.endsWith("_key"))
      .map((name) => join("/etc/ssh", name));
  } catch {
    return [];
  }
}
