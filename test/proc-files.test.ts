import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { processIdsNow, readProcFile, statusLine } from "../server/domain/executor/proc-files.js";
import { readProcess } from "../server/domain/executor/process-tree.js";

const dir = mkdtempSync(join(tmpdir(), "veil-proc-files-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("reading /proc with one reused buffer", () => {
  it("reads a process's stat and status exactly as readFileSync does", () => {
    // Fields that do not change between the two reads: the pid's own line, the uid line.
    const status = readProcFile(`/proc/${process.pid}/status`)!;
    expect(statusLine(status, "Pid")).toBe(String(process.pid));
    expect(statusLine(status, "Uid")).toBe(statusLine(readFileSync(`/proc/${process.pid}/status`, "latin1"), "Uid"));
    expect(statusLine(status, "Name")).toBe("node");
    const info = readProcess(process.pid)!;
    expect(info).toMatchObject({ pid: process.pid, ppid: process.ppid, state: "R" });
    expect(info.start).toBe(readFileSync(`/proc/${process.pid}/stat`, "latin1").split(") ")[1]!.split(" ")[19]);
  });

  it("reads a file longer than its buffer whole, and one after it without leftovers", () => {
    const long = `${"0123456789abcdef".repeat(1500)}end`;
    writeFileSync(join(dir, "long"), long);
    writeFileSync(join(dir, "short"), "short");
    expect(readProcFile(join(dir, "long"))).toBe(long);
    expect(readProcFile(join(dir, "short"))).toBe("short");
  });

  it("answers undefined for a process that is gone", () => {
    expect(readProcFile("/proc/999999999/status")).toBeUndefined();
    expect(readProcess(999999999)).toBeUndefined();
  });

  it("lists the pids /proc holds, this process and its parent among them, and nothing that is not a pid", () => {
    const pids = processIdsNow();
    expect(pids).toContain(process.pid);
    expect(pids).toContain(process.ppid);
    expect(pids.every((pid) => Number.isInteger(pid) && pid > 0)).toBe(true);
  });

  it("finds a status line at the start, in the middle and at the end, and not a key that is only a prefix", () => {
    const status = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\nGid:\t5\t5\t5\t5";
    expect(statusLine(status, "Name")).toBe("bash");
    expect(statusLine(status, "State")).toBe("S (sleeping)");
    expect(statusLine(status, "Gid")).toBe("5\t5\t5\t5");
    expect(statusLine(status, "Ui")).toBeUndefined();
    expect(statusLine(status, "Groups")).toBeUndefined();
  });
});
