// In-process Veil for tests: the real app over a temp LevelDB, called through a router transport.
import { createRouterTransport } from "@connectrpc/connect";
import { createApp, type VeilApp } from "../../server/app.js";
import { parseServerConfig } from "../../server/config.js";
import { createLogger } from "../../server/log.js";
import { bearer, clientsFor, type VeilClient } from "../../client/index.js";
import { tempDir } from "./temp-dir.js";

/** A test master key (base64 of 32 bytes), so tests never write master.key files. */
export const TEST_MASTER_KEY = Buffer.alloc(32, 7).toString("base64");

/** An app plus helpers to call it as any token. */
export interface TestApp {
  app: VeilApp;
  dataDir: string;
  logs: string[];
  /** Clients for the operator token (admin of tenant `default`). */
  admin: VeilClient;
  as(token: string | undefined): VeilClient;
  close(): Promise<void>;
}

/** Starts the real app (LevelDB in a temp dir) behind an in-memory router transport. */
export async function startTestApp(options: { dataDir?: string; extraFlags?: string[] } = {}): Promise<TestApp> {
  const dir = options.dataDir === undefined ? tempDir() : undefined;
  const dataDir = options.dataDir ?? dir!.path;
  const logs: string[] = [];
  const config = parseServerConfig(["--data-dir", dataDir, "--port", "0", ...(options.extraFlags ?? [])], { VEIL_MASTER_KEY: TEST_MASTER_KEY });
  const app = await createApp(config, { logger: createLogger((line) => logs.push(line)), env: { VEIL_MASTER_KEY: TEST_MASTER_KEY } });
  const as = (token: string | undefined) =>
    clientsFor(
      createRouterTransport(app.routes, {
        router: { interceptors: app.interceptors },
        transport: { interceptors: token === undefined ? [] : [bearer(token)] },
      }),
    );
  return {
    app,
    dataDir,
    logs,
    admin: as(app.operatorToken!),
    as,
    async close() {
      await app.close();
      dir?.cleanup();
    },
  };
}
