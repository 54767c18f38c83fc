// A real Veil server on a free port over a fresh temporary data dir, for benches.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseServerConfig } from "../../server/config.js";
import { createLogger } from "../../server/log.js";
import { startServer, type VeilServer } from "../../server/server.js";

/** A started temp server and the operator token of its fresh data dir. */
export interface TempServer {
  server: VeilServer;
  url: string;
  token: string;
  /** Stops the server and deletes its data dir. */
  close(): Promise<void>;
}

/**
 * Starts the server as `veil serve` would, but with logs discarded (formatting
 * still runs, so the per-call cost is the real one) and an empty environment so
 * a VEIL_* variable of the caller cannot change what is measured.
 */
export async function startTempServer(): Promise<TempServer> {
  const dir = mkdtempSync(join(tmpdir(), "veil-bench-"));
  const config = parseServerConfig(["--host", "127.0.0.1", "--port", "0", "--data-dir", dir], {});
  const server = await startServer(config, { logger: createLogger(() => {}), env: {} });
  const token = server.app.operatorToken;
  if (token === undefined) throw new Error(`bench server: fresh data dir ${dir} did not create an operator token`);
  return {
    server,
    url: server.url,
    token,
    async close() {
      await server.close({ drainMs: 1000 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
