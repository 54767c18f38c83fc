// A real Veil server on port 0 for network tests, with its logs captured.
import { parseServerConfig } from "../../server/config.js";
import { createLogger } from "../../server/log.js";
import { startServer, type VeilServer } from "../../server/server.js";
import { TEST_MASTER_KEY } from "./app.js";
import { tempDir } from "./temp-dir.js";

/** A started server, its data dir and its log lines. */
export interface TestServer {
  server: VeilServer;
  url: string;
  port: number;
  dataDir: string;
  token: string;
  logs: string[];
  close(): Promise<void>;
}

/** Starts the real server on 127.0.0.1:0 over a temp (or given) data dir. */
export async function startTestServer(options: { dataDir?: string; masterKey?: string; extraFlags?: string[] } = {}): Promise<TestServer> {
  const dir = options.dataDir === undefined ? tempDir() : undefined;
  const dataDir = options.dataDir ?? dir!.path;
  const env = { VEIL_MASTER_KEY: options.masterKey ?? TEST_MASTER_KEY };
  const logs: string[] = [];
  const config = parseServerConfig(["--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, ...(options.extraFlags ?? [])], env);
  const server = await startServer(config, { logger: createLogger((line) => logs.push(line)), env });
  const { readFileSync } = await import("node:fs");
  const token = readFileSync(`${dataDir}/admin.token`, "utf8").trim();
  return {
    server,
    url: server.url,
    port: server.port,
    dataDir,
    token,
    logs,
    async close() {
      await server.close({ drainMs: 2000 });
      dir?.cleanup();
    },
  };
}
