// The kernel's mount table (/proc/self/mountinfo), parsed once per read for whoever needs it.
import { readFileSync } from "node:fs";

/** One mount: its root inside the filesystem, where it is mounted, its type and its superblock options. */
export interface MountEntry {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** Every mount this process sees; empty where /proc is not there to read. */
export function readMountInfo(): MountEntry[] {
  let info: string;
  try {
    info = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const mounts: MountEntry[] = [];
  for (const line of info.split("\n")) {
    const [left, right] = line.split(" - ");
    if (left === undefined || right === undefined) continue;
    const fields = left.split(" ");
    const [fsType, , options] = right.split(" ");
    if (fields[3] === undefined || fields[4] === undefined || fsType === undefined) continue;
    mounts.push({ root: unescapeOctal(fields[3]), mountPoint: unescapeOctal(fields[4]), fsType, superOptions: (options ?? "").split(",") });
  }
  return mounts;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
