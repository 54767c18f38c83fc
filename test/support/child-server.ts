// Runs `veil serve` as a separate process, as a user would, for crash and CLI tests.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { TEST_MASTER_KEY } from "./app.js";

/** Path of the `veil` bin. */
export const VEIL_BIN = fileURLToPath(new URL("../../bin/veil.mjs", import.meta.url));

/** A server process with its URL and collected output. */
export interface ChildServer {
  proc: ChildProcess;
  url: string;
  token: string;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

/** Starts `veil serve --port 0` over a data dir and waits for its `listening` log line. */
export async function spawnServer(dataDir: string, env: Record<string, string> = {}): Promise<ChildServer> {
  const proc = spawn(process.execPath, [VEIL_BIN, "serve", "--port", "0", "--data-dir", dataDir], {
    // No health-drain period on SIGTERM unless a test asks for one: stop() would otherwise wait it out.
    env: { PATH: process.env.PATH ?? "", VEIL_MASTER_KEY: TEST_MASTER_KEY, VEIL_DRAIN_MS: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 20_000);
    proc.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      const match = /"msg":"listening","url":"([^"]+)"/.exec(err);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
  return {
    proc,
    url,
    token: readFileSync(`${dataDir}/admin.token`, "utf8").trim(),
    stdout: () => out,
    stderr: () => err,
    async stop() {
      proc.kill("SIGTERM");
      return exited;
    },
    async kill9() {
      proc.kill("SIGKILL");
      await exited;
    },
  };
}
