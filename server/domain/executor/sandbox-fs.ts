// What of the host's file system a sandbox sees: system dirs, an /etc allow-list, a passwd stub, and paths hidden wherever they are.
import { existsSync, lstatSync, mkdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";

/** The uid/gid commands see inside the sandbox, whatever host uid they run as: an ordinary user for ssh, git and friends. */
export const SANDBOX_UID = 1000;
export const SANDBOX_GID = 1000;
const SANDBOX_USER = "veil";

/** Top-level system paths that are symlinks into /usr on merged-/usr systems and directories elsewhere. */
const SYSTEM_DIRS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/**
 * The only parts of /etc a command sees: name service and resolver config, TLS trust stores, the
 * loader's cache, time zone, Debian's alternatives (symlinks in /usr/bin point into it), and the
 * read-only config of the tools agents use (git, python, ssh client, curl/wget). Not included, on
 * purpose: shadow files, ssh host keys, machine-id, npmrc/pip.conf (they may hold registry tokens),
 * and anything else a command has no need for. passwd and group are stubs (see identityFiles).
 */
export const ETC_ALLOW_LIST = [
  "nsswitch.conf",
  "hosts",
  "host.conf",
  "resolv.conf",
  "gai.conf",
  "networks",
  "protocols",
  "services",
  "rpc",
  "netconfig",
  "ssl",
  "pki",
  "ca-certificates",
  "ca-certificates.conf",
  "crypto-policies",
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.conf.d",
  "localtime",
  "timezone",
  "alternatives",
  "mime.types",
  "magic",
  "magic.mime",
  "locale.alias",
  "terminfo",
  "inputrc",
  "shells",
  "os-release",
  "debian_version",
  "mtab",
  "gitconfig",
  "wgetrc",
  "ssh/ssh_config",
  "ssh/ssh_config.d",
  "python3",
  "python3.9",
  "python3.10",
  "python3.11",
  "python3.12",
  "python3.13",
];

/** Inside allow-listed /etc paths, still hidden: private keys of the host's TLS setup. */
const HIDDEN_UNDER_ETC = ["/etc/ssl/private", "/etc/pki/tls/private"];

/** bwrap arguments that expose the system (read-only) and the /etc allow-list, and hide `hidden` wherever it lies under them. */
export function systemMounts(options: { identityDir: string; hidden: readonly string[]; network: boolean }): string[] {
  const args = ["--ro-bind", "/usr", "/usr"];
  const bound = ["/usr"];
  for (const dir of SYSTEM_DIRS) {
    const stat = lstatOrUndefined(dir);
    if (stat?.isSymbolicLink()) args.push("--symlink", readlinkSync(dir), dir);
    else if (stat?.isDirectory()) {
      args.push("--ro-bind", dir, dir);
      bound.push(dir);
    }
  }
  for (const name of ETC_ALLOW_LIST) {
    const path = `/etc/${name}`;
    const stat = lstatOrUndefined(path);
    // A symlink stays a symlink (localtime into /usr/share/zoneinfo, mtab into /proc): its target decides what it shows.
    if (stat?.isSymbolicLink()) args.push("--symlink", readlinkSync(path), path);
    else if (stat !== undefined) {
      args.push("--ro-bind", path, path);
      bound.push(path);
    }
  }
  args.push("--ro-bind", join(options.identityDir, "passwd"), "/etc/passwd", "--ro-bind", join(options.identityDir, "group"), "/etc/group");
  if (options.network && existsSync("/run/systemd/resolve")) {
    args.push("--ro-bind", "/run/systemd/resolve", "/run/systemd/resolve");
    bound.push("/run/systemd/resolve");
  }
  args.push(...hideArgs([...HIDDEN_UNDER_ETC, ...options.hidden], bound, join(options.identityDir, "empty")));
  return args;
}

/**
 * Covers each hidden path that a bind above exposes: an empty file over a file (not /dev/null: bwrap
 * binds are nodev, so it would read as "permission denied" rather than empty), an empty tmpfs over a
 * directory. Only the name stays visible. Paths are compared by their real location, so a symlinked
 * data dir is caught too.
 */
export function hideArgs(hidden: readonly string[], bound: readonly string[], emptyFile: string): string[] {
  const roots = bound.map(realOrSelf);
  const args: string[] = [];
  for (const path of new Set(hidden.map(realOrSelf))) {
    if (!roots.some((root) => isInside(path, root))) continue;
    const stat = lstatOrUndefined(path);
    if (stat === undefined) continue;
    if (stat.isDirectory()) args.push("--tmpfs", path);
    else args.push("--ro-bind", emptyFile, path);
  }
  return args;
}

/** Writes the sandbox's /etc/passwd and /etc/group stubs into `dir` (root, the command user with home = workspace, nobody), and the empty file that covers hidden files. */
export function writeIdentityFiles(dir: string, workspace: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const passwd = [
    "root:x:0:0:root:/root:/usr/sbin/nologin",
    `${SANDBOX_USER}:x:${SANDBOX_UID}:${SANDBOX_GID}:Veil command user:${workspace}:/bin/bash`,
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
  ];
  const group = ["root:x:0:", `${SANDBOX_USER}:x:${SANDBOX_GID}:`, "nogroup:x:65534:"];
  writeFileSync(join(dir, "passwd"), `${passwd.join("\n")}\n`, { mode: 0o644 });
  writeFileSync(join(dir, "group"), `${group.join("\n")}\n`, { mode: 0o644 });
  writeFileSync(join(dir, "empty"), "", { mode: 0o444 });
}

/** Removes what writeIdentityFiles wrote. */
export function removeIdentityFiles(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** True when `path` is `root` or below it. */
export function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !rel.startsWith(sep));
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
