// Starts the bench's target server, in its own process (default) or in this one.
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { waitForChildMessage } from "./child-message.js";
import type { FromServer, ToServer } from "./server-child.js";
import { startTempServer } from "./temp-server.js";

/** A server to load, wherever it runs. */
export interface BenchServer {
  url: string;
  token: string;
  /** Where the server runs, for the report. */
  where: "child process" | "in process";
  /** The server's process id (this process's when in process), to match a --cpu-prof file to it. */
  pid: number;
  /** CPU time the server's process has used so far (includes the client's when in process). */
  cpuUsage(): Promise<NodeJS.CpuUsage>;
  close(): Promise<void>;
}

/**
 * A separate process is the default because that is how Veil runs: a client in
 * the same event loop would steal the server's only thread and the ratios would
 * measure the client as much as the server. `inProcess` is there to compare.
 */
export async function startBenchServer(options: { inProcess?: boolean } = {}): Promise<BenchServer> {
  if (options.inProcess === true) {
    const temp = await startTempServer();
    return { url: temp.url, token: temp.token, where: "in process", pid: process.pid, cpuUsage: async () => process.cpuUsage(), close: () => temp.close() };
  }
  // fork() reuses this process's execArgv, so `--import tsx` and `--cpu-prof` carry over;
  // add the loader only when started some other way (e.g. the tsx CLI).
  const execArgv = process.execArgv.some((a) => a.includes("tsx")) ? process.execArgv : [...process.execArgv, "--import", "tsx"];
  const child = fork(fileURLToPath(new URL("./server-child.ts", import.meta.url)), [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const waitFor = <T extends FromServer["type"]>(type: T) => waitForChildMessage<FromServer, T>(child, type, "bench server process");
  const send = (message: ToServer) => child.send(message);
  const ready = await waitFor("ready");
  return {
    url: ready.url,
    token: ready.token,
    where: "child process",
    pid: child.pid ?? 0,
    async cpuUsage() {
      const reply = waitFor("cpu");
      send({ type: "cpu" });
      return (await reply).usage;
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      send({ type: "close" });
      await exited;
    },
  };
}
