// Looks at the host's live processes, for tests that check what a conversation left running.
import { readdirSync, readFileSync } from "node:fs";

/** Host pids of live processes (zombies left out: they are gone, only not yet reaped) whose command line contains `fragment`. */
export function pidsWith(fragment: string): number[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
        if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return false;
        return readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " ").includes(fragment);
      } catch {
        return false;
      }
    })
    .map(Number);
}
