// Size-capped workspaces: a tmpfs mounted on the workspace when the server may mount, else measuring it for the watchdog.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmdirSync, statSync, statfsSync } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { isRoot } from "./dynamic-user.js";
import { runSystemCommand } from "./system-commands.js";

const MOUNT = "/bin/mount";
const UMOUNT = "/bin/umount";

let mountable: boolean | undefined;

/** Whether this process may mount a tmpfs (root, and the kernel allows it here); probed once with a real mount. */
export function canMountTmpfs(): boolean {
  if (mountable !== undefined) return mountable;
  mountable = false;
  if (!isRoot()) return mountable;
  const dir = mkdtempSync(join(tmpdir(), "veil-mount-probe-"));
  try {
    const mounted = spawnSync(MOUNT, ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", dir], { stdio: "ignore", timeout: 5_000 });
    mountable = mounted.status === 0 && isMountPoint(dir);
    if (mounted.status === 0) spawnSync(UMOUNT, [dir], { stdio: "ignore", timeout: 5_000 });
  } finally {
    rmdirSync(dir);
  }
  return mountable;
}

/** What to mount on a workspace. uid, gid and mode default to the directory's own, so ownership set before stays. */
export interface WorkspaceMount {
  path: string;
  sizeBytes: number;
  uid?: number;
  gid?: number;
}

/**
 * Mounts a tmpfs of `sizeBytes` on the (empty, existing) workspace: a full workspace then fails with ENOSPC
 * there, never on the data dir's disk. Its files live in RAM and count against the conversation's memory
 * limit. Resolves false, mounting nothing, when the server may not mount; the watchdog applies then.
 * Inodes are capped too (one per 4 KiB), so millions of empty files cannot pin kernel memory.
 */
export async function mountWorkspace(mount: WorkspaceMount): Promise<boolean> {
  if (!canMountTmpfs()) return false;
  const stat = statSync(mount.path);
  const options = [
    `size=${mount.sizeBytes}`,
    `nr_inodes=${Math.max(1024, Math.floor(mount.sizeBytes / 4096))}`,
    `mode=${(stat.mode & 0o7777).toString(8).padStart(4, "0")}`,
    `uid=${mount.uid ?? stat.uid}`,
    `gid=${mount.gid ?? stat.gid}`,
    "nosuid",
    "nodev",
  ];
  const code = await runSystemCommand([MOUNT, "-t", "tmpfs", "-o", options.join(","), "veil-workspace", mount.path], 10_000);
  if (code !== 0) throw new Error(`mount of the workspace's tmpfs failed (exit ${code})`);
  return true;
}

/** True when a filesystem is mounted on `path` (its device differs from its parent's). */
export function isMountPoint(path: string): boolean {
  try {
    return statSync(path).dev !== statSync(dirname(path)).dev;
  } catch {
    return false;
  }
}

/** True when the filesystem holding `path` has no free block or inode left; undefined when it cannot be asked. */
export function filesystemFull(path: string): boolean | undefined {
  try {
    const fs = statfsSync(path);
    return fs.bavail === 0 || (fs.files > 0 && fs.ffree === 0);
  } catch {
    return undefined;
  }
}

/** Bytes allocated under `root` (blocks, as du counts), not following symlinks; stops counting once above `stopAbove`. */
export async function diskUsage(root: string, stopAbove: number): Promise<number> {
  let total = 0;
  const pending = [root];
  while (pending.length > 0 && total <= stopAbove) {
    const dir = pending.pop()!;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      const stat = await lstat(path).catch(() => undefined);
      if (stat === undefined) continue;
      total += stat.blocks * 512;
      if (entry.isDirectory()) pending.push(path);
    }
  }
  return total;
}
