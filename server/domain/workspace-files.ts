// Rendered `files` in a workspace: which paths are acceptable, and writing them 0600 (folders 0700) without following symlinks.
import { chownSync, closeSync, constants, fchmodSync, fchownSync, lstatSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fail } from "../errors.js";

/** The rule a `files` key breaks, or undefined when it is a plain workspace-relative path. */
function pathProblem(path: string): string | undefined {
  if (path === "") return "the path must not be empty";
  if (path.includes("\0")) return "the path must not contain NUL";
  if (Buffer.byteLength(path) > 1024) return "the path must be at most 1024 bytes";
  if (path.startsWith("/")) return "the path must be relative to the workspace, not absolute";
  for (const part of path.split("/")) {
    if (part === "..") return "the path must not contain '..'";
    if (part === "" || part === ".") return "the path must not hold empty or '.' segments (write a/b, not a//b, ./a or a/)";
  }
  return undefined;
}

/** INVALID_ARGUMENT naming `files[path]` for a bad path, or for a path that another one needs as its folder. */
export function checkFilePaths(paths: readonly string[]): void {
  for (const path of paths) {
    const problem = pathProblem(path);
    if (problem !== undefined) throw fail.invalid(`files[${path}]: ${problem}`);
  }
  const all = new Set(paths);
  for (const path of paths) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const folder = parts.slice(0, i).join("/");
      if (all.has(folder)) throw fail.invalid(`files[${path}]: ${folder} is also one of the files, so it cannot be a folder`);
    }
  }
}

/**
 * Writes each file into `workspace` (fresh, before any command ran): parent folders 0700, files 0600,
 * owned by `owner` when given. A path through a symlink or an existing file is INVALID_ARGUMENT.
 */
export function writeWorkspaceFiles(workspace: string, files: Record<string, string>, owner?: { uid: number; gid: number }): void {
  checkFilePaths(Object.keys(files));
  for (const [path, text] of Object.entries(files)) {
    const parts = path.split("/");
    let dir = workspace;
    for (const part of parts.slice(0, -1)) {
      dir = join(dir, part);
      const stat = lstatOrUndefined(dir);
      if (stat === undefined) {
        mkdirSync(dir, { mode: 0o700 });
        if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
      } else if (!stat.isDirectory()) {
        throw fail.invalid(`files[${path}]: ${part} is ${stat.isSymbolicLink() ? "a symlink" : "not a folder"}; paths must not pass through symlinks`);
      }
    }
    writeOne(join(dir, parts.at(-1)!), path, text, owner);
  }
}

function writeOne(target: string, path: string, text: string, owner: { uid: number; gid: number } | undefined) {
  let fd: number;
  try {
    // O_NOFOLLOW|O_EXCL: never through a symlink, never over something already there.
    fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || code === "ELOOP") throw fail.invalid(`files[${path}]: something already exists there (a symlink or a file)`);
    throw error;
  }
  try {
    if (owner !== undefined) fchownSync(fd, owner.uid, owner.gid);
    // The umask could have narrowed it; 0600 exactly.
    fchmodSync(fd, 0o600);
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
