// The small long-lived shell that runs mount, umount and kill sweeps: exit codes, argv passed literally, timeouts, and that the server itself is not forked.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Level } from "level";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSystemCommand } from "../server/domain/executor/system-commands.js";

const dir = mkdtempSync(join(tmpdir(), "veil-system-commands-"));
// Open before the shell starts: LevelDB's files are not close-on-exec, as in the server.
const db = new Level<string, string>(join(dir, "db"));
beforeAll(() => db.open());
afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("system commands", () => {
  it("answers each command's exit code, concurrent ones too", async () => {
    const codes = await Promise.all([
      runSystemCommand(["true"], 5_000),
      runSystemCommand(["false"], 5_000),
      runSystemCommand(["/bin/sh", "-c", "exit 7"], 5_000),
      runSystemCommand(["/no/such/program"], 5_000),
    ]);
    expect(codes).toEqual([0, 1, 7, 127]);
  });

  it("passes every argument as it is: nothing in a path is read as shell syntax", async () => {
    const out = join(dir, "arg");
    const pwned = join(dir, "pwned");
    const hostile = `$(touch ${pwned}) \`touch ${pwned}\`; touch ${pwned} && "quoted" 'single' a  b \\ * ?`;
    const code = await runSystemCommand(["/bin/sh", "-c", 'printf %s "$1" > "$2"', "sh", hostile, out], 5_000);
    expect(code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(hostile);
    expect(existsSync(pwned)).toBe(false);
  });

  it("runs an argument holding a newline too (as a child of the server)", async () => {
    const out = join(dir, "newline");
    const code = await runSystemCommand(["/bin/sh", "-c", 'printf %s "$1" > "$2"', "sh", "two\nlines", out], 5_000);
    expect(code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("two\nlines");
  });

  it("forks from its own small shell, not from the server", async () => {
    const out = join(dir, "parent");
    expect(await runSystemCommand(["/bin/sh", "-c", 'echo "$PPID" > "$1"', "sh", out], 5_000)).toBe(0);
    const parent = Number(readFileSync(out, "utf8").trim());
    expect(parent).not.toBe(process.pid);
    // The command's parent is the runner shell, itself a child of this process.
    const stat = readFileSync(`/proc/${parent}/stat`, "utf8");
    expect(stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))).toBe("bash");
    expect(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])).toBe(process.pid);
  });

  it("keeps none of the server's stray fds open in its long-lived shell (LevelDB's files)", async () => {
    const out = join(dir, "fds");
    expect(await runSystemCommand(["/bin/sh", "-c", 'for f in /proc/$PPID/fd/*; do readlink "$f"; done > "$1"', "sh", out], 5_000)).toBe(0);
    const fds = readFileSync(out, "utf8");
    // Its stdin and stdout (Node's socket pairs) and /dev/null for stderr: nothing else.
    expect(fds.trim().split("\n")).toHaveLength(3);
    expect(fds).not.toContain(join(dir, "db"));
  });

  it("gives up on a command past its timeout and runs the next one in a fresh shell", async () => {
    const started = Date.now();
    expect(await runSystemCommand(["sleep", "30"], 300)).toBe(-1);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await runSystemCommand(["true"], 5_000)).toBe(0);
  });
});
