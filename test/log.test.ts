// The default logger's stderr: lines of one turn leave in one write, in order, and none is lost when the process exits.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { batchedStderr, createLogger } from "../server/log.js";

const logModule = fileURLToPath(new URL("../server/log.ts", import.meta.url));

/** Runs `body` in a fresh Node process with `createLogger` imported; its stderr. */
function inChild(body: string): { stderr: string; status: number | null } {
  const script = `import { createLogger } from ${JSON.stringify(logModule)};\nconst logger = createLogger();\n${body}`;
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
  return { stderr: run.stderr, status: run.status };
}

describe("default logger (stderr)", () => {
  it("writes the lines logged in one turn with one write, in order, on the next turn", async () => {
    const writes: string[] = [];
    const original = process.stderr.write;
    process.stderr.write = ((chunk: string) => {
      writes.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      const logger = createLogger();
      for (let i = 0; i < 50; i++) logger.log("info", "rpc", { n: i });
      expect(writes).toEqual([]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(writes).toHaveLength(1);
      const lines = writes[0]!.trimEnd().split("\n").map((l) => JSON.parse(l) as { n: number; msg: string });
      expect(lines.map((l) => l.n)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      logger.log("warn", "later", {});
      await new Promise((resolve) => setImmediate(resolve));
      expect(writes).toHaveLength(2);
      expect(JSON.parse(writes[1]!)).toMatchObject({ level: "warn", msg: "later" });
    } finally {
      process.stderr.write = original;
    }
  });

  it("is one writer per process, however many loggers use it", () => {
    expect(batchedStderr()).toBe(batchedStderr());
  });

  it("loses no line when the process exits in the same turn: process.exit, and a thrown error", () => {
    const exited = inChild(`for (let i = 0; i < 3; i++) logger.log("info", "line", { i });\nprocess.exit(3);`);
    expect(exited.status).toBe(3);
    expect(exited.stderr.trimEnd().split("\n").map((l) => (JSON.parse(l) as { i: number }).i)).toEqual([0, 1, 2]);

    // The line and the uncaught error in one turn: the flush scheduled for the next turn never runs.
    const thrown = inChild(`setTimeout(() => {\n  logger.log("error", "about to fail", { code: "x" });\n  logger.log("info", "same turn", {});\n  throw new Error("boom");\n}, 1);`);
    expect(thrown.status).not.toBe(0);
    const first = thrown.stderr.indexOf('"about to fail"');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(thrown.stderr.indexOf('"same turn"')).toBeGreaterThan(first);
  });
});
