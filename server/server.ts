// The network server: the app's routes behind the Connect adapter on one port, with graceful shutdown.
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createApp, type VeilApp } from "./app.js";
import type { ServerConfig } from "./config.js";
import { DataDirInUseError, dataDirBefore, rollbackDataDir } from "./data-dir.js";
import type { Logger } from "./log.js";
import { createConsoleRoute, defaultConsoleDir, loadConsoleFiles } from "./net/console-route.js";
import { withCors } from "./net/cors.js";
import { withSpecGrpcMessage } from "./net/grpc-message.js";
import { type HttpRoute, withHttpRoutes } from "./net/http-routes.js";
import { listen } from "./net/listener.js";
import { createMcpRoute } from "./mcp/http-route.js";
import { guardDecoding } from "./rpc/decode-guard.js";
import { LIMITS } from "./rpc/schemas.js";

/** A listening Veil server. */
export interface VeilServer {
  app: VeilApp;
  url: string;
  port: number;
  /** Drains in-flight calls (up to drainMs), then closes the store. */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** Starts Veil on `config.host:config.port` (port 0 picks a free one). */
export async function startServer(config: ServerConfig, options: { logger: Logger; env?: NodeJS.ProcessEnv }): Promise<VeilServer> {
  // A failed start takes back what it made: no half-made data dir, no operator token never printed.
  const before = dataDirBefore(config.dataDir);
  const rollback = (error: unknown) => {
    // Another server owns the dir: what is there (and new) is its, not ours to remove.
    if (!(error instanceof DataDirInUseError)) rollbackDataDir(config.dataDir, before);
    return error;
  };
  const app = await createApp(config, options).catch((error: unknown) => {
    throw rollback(error);
  });
  const handler = connectNodeAdapter({
    routes: (router) => {
      app.routes(router);
      guardDecoding(router, { readMaxBytes: LIMITS.messageBytes, logger: options.logger });
    },
    interceptors: app.interceptors,
    readMaxBytes: LIMITS.messageBytes,
    // gzip of responses dominated CPU in streaming here, and loopback/LAN clients gain little from it.
    acceptCompression: [],
  });
  // Plain HTTP beside the RPCs, on the same port; the RPC paths stay the adapter's.
  const httpRoutes: HttpRoute[] = [
    createConsoleRoute(loadConsoleFiles(config.consoleDir ?? defaultConsoleDir())),
    createMcpRoute({ app, logger: options.logger }),
  ];
  let listener: Awaited<ReturnType<typeof listen>>;
  try {
    listener = await listen(withHttpRoutes(httpRoutes, withCors(withSpecGrpcMessage(handler))), { host: config.host, port: config.port });
  } catch (error) {
    await app.close();
    throw rollback(error);
  }
  let closing: Promise<void> | undefined;
  return {
    app,
    url: listener.url,
    port: listener.port,
    close(closeOptions = {}) {
      closing ??= (async () => {
        app.serving = false;
        // Conversations first: a long-running command would otherwise hold the drain until its deadline.
        await app.conversations.closeAll();
        await listener.close(closeOptions);
        await app.close();
      })();
      return closing;
    },
  };
}
