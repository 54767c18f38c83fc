// The work dir: one private workspace per conversation, in a per-server subdir, and what crashed servers left behind.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, realpathSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { RunAs } from "./executor/dynamic-user.js";
import { readProcess } from "./executor/process-tree.js";
import { runSystemCommand, SYSTEM_COMMAND_ENV } from "./executor/system-commands.js";
import { readMountInfo } from "./mount-info.js";

/** Workspaces of this server. */
export interface WorkDir {
  /** The work dir itself (hidden in the sandbox: it holds other conversations' workspaces). */
  readonly root: string;
  /** This server's subdir: `srv-<pid>-<start time>`, so a restart can tell a crashed server's from a live one's. */
  readonly serverDir: string;
  /** Creates a fresh workspace, mode 0700, owned by `owner` when given. */
  create(owner: RunAs | undefined): string;
  /**
   * Unmounts anything mounted in `path` (a size-capped tmpfs), then removes it, without blocking
   * the event loop on `umount` (a conversation's end must not stall every other call); resolves
   * once it is gone. A failure leaves it to close() (or, after a crash, the next start).
   */
  remove(path: string): Promise<void>;
  /** Removes this server's subdir: on shutdown. */
  close(): void;
}

/**
 * Opens (creating, 0711 and owned by this user) the work dir, removes the subdirs of servers that are
 * gone (crash leftovers: unmounted first), and creates this server's own. Refuses a work dir that is a
 * symlink or belongs to another user (someone could have planted it in a shared /tmp).
 */
export function openWorkDir(root: string, log: (msg: string, fields: Record<string, unknown>) => void = () => {}): WorkDir {
  mkdirSync(root, { recursive: true, mode: 0o711 });
  const stat = lstatSync(root);
  if (!stat.isDirectory() || stat.uid !== process.getuid?.()) throw new Error(`work dir ${root} must be a directory owned by the server's user (not a symlink)`);
  // 0711: a conversation's uid may enter its own workspace but list no one else's.
  chmodSync(root, 0o711);
  // Only our own subdirs: anything else in a work dir the operator chose is not ours to delete.
  for (const name of readdirSync(root)) {
    if (!SERVER_DIR.test(name) || isLiveServerDir(name)) continue;
    removeTree(join(root, name));
    log("removed a workspace dir left by a server that is gone", { path: join(root, name) });
  }
  const me = readProcess(process.pid);
  const serverDir = join(root, `srv-${process.pid}-${me?.start ?? "0"}`);
  mkdirSync(serverDir, { mode: 0o711 });
  chmodSync(serverDir, 0o711);
  return {
    root,
    serverDir,
    create(owner) {
      const path = join(serverDir, `ws_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`);
      mkdirSync(path, { mode: 0o700 });
      if (owner !== undefined) chownSync(path, owner.uid, owner.gid);
      return path;
    },
    remove: (path) => removeTreeInBackground(path).catch(() => {}),
    close: () => removeTree(serverDir),
  };
}

const SERVER_DIR = /^srv-(\d+)-(\d+)$/;

/** `srv-<pid>-<start>` of a process that still runs (the start time tells it from a later process reusing the pid). */
function isLiveServerDir(name: string): boolean {
  const match = SERVER_DIR.exec(name);
  if (!match) return false;
  const info = readProcess(Number(match[1]));
  return info !== undefined && info.start === match[2] && info.state !== "Z";
}

/** Unmounts every mount at or below `path` (deepest first; lazily, so a busy one cannot stop the removal), then deletes it. */
export function removeTree(path: string): void {
  for (const mount of mountsDeepestFirst(path)) spawnSync("umount", ["-l", mount], { stdio: "ignore", env: SYSTEM_COMMAND_ENV });
  rmSync(path, { recursive: true, force: true, maxRetries: 3 });
}

/** removeTree without blocking the event loop: `umount` runs in the small shell of system-commands.ts, not as a fork of the server. */
async function removeTreeInBackground(path: string): Promise<void> {
  for (const mount of mountsDeepestFirst(path)) await runSystemCommand(["umount", "-l", mount], 10_000);
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/** The mount points at or below `path` (its real path), deepest first: the order they can be unmounted in. */
function mountsDeepestFirst(path: string): string[] {
  const real = realOrSelf(path);
  return readMountInfo()
    .map((m) => m.mountPoint)
    .filter((point) => point === real || point.startsWith(`${real}/`))
    .sort((a, b) => b.length - a.length);
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
