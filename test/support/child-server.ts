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

/** A `veil serve` process once it listens: its URL, collected output, stop and kill. */
export type ServeProcess = Omit<ChildServer, "token">;

/**
 * Spawns `veil` with `args` and waits for its `listening` log line (`label` names it in a
 * failure). The environment is only PATH, the test master key and no drain, plus `env`.
 */
export async function spawnServe(args: string[], env: Record<string, string> = {}, options: { label?: string; timeoutMs?: number } = {}): Promise<ServeProcess> {
  const label = options.label === undefined ? "server" : `server ${options.label}`;
  const proc = spawn(process.execPath, [VEIL_BIN, ...args], {
    // No health-drain period on SIGTERM unless a test asks for one: stop() would otherwise wait it out.
    env: { PATH: process.env.PATH ?? "", VEIL_MASTER_KEY: TEST_MASTER_KEY, VEIL_DRAIN_MS: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start: ${err}`)), options.timeoutMs ?? 20_000);
    proc.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      const match = /"msg":"listening","url":"([^"]+)"/.exec(err);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then((code) => reject(new Error(`${label} exited with ${code}: ${err}`)));
  });
  return {
    proc,
    url,
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

/** Starts `veil serve --port 0` over a data dir and waits for its `listening` log line. */
export async function spawnServer(dataDir: string, env: Record<string, string> = {}): Promise<ChildServer> {
  const server = await spawnServe(["serve", "--port", "0", "--data-dir", dataDir], env);
  return { ...server, token: readFileSync(`${dataDir}/admin.token`, "utf8").trim() };
}
