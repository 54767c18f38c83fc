// The network server: the app's routes behind the Connect adapter on one port (TLS when configured), with graceful shutdown.
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createApp, type VeilApp } from "./app.js";
import { advertiseUrl, checkAdvertisable } from "./cluster/advertise.js";
import type { KvStore } from "./store/kv.js";
import type { ServerConfig } from "./config.js";
import { DataDirInUseError, dataDirBefore, rollbackDataDir } from "./data-dir.js";
import { createConsoleRoute, defaultConsoleDir, loadConsoleFiles } from "./net/console-route.js";
import { atLevel, type Logger } from "./log.js";
import { createMetrics } from "./metrics.js";
import { withCors } from "./net/cors.js";
import { withDeadlineCap } from "./net/deadline-cap.js";
import { withSpecGrpcMessage } from "./net/grpc-message.js";
import { createGrpcLeanPath } from "./net/grpc-lean.js";
import { HAND_ENCODERS } from "./rpc/secret-wire.js";
import { type HttpRoute, withHttpRoutes } from "./net/http-routes.js";
import { listen } from "./net/listener.js";
import { createMcpRoute } from "./mcp/http-route.js";
import { healthzRoute, isAnonymousRequest, metricsRoute } from "./net/observability.js";
import { withRequestId } from "./net/request-id.js";
import { readTlsFiles, warnIfInsecure } from "./net/tls-files.js";
import { guardDecoding } from "./rpc/decode-guard.js";
import { LIMITS } from "./rpc/schemas.js";

/** A listening Veil server. */
export interface VeilServer {
  app: VeilApp;
  url: string;
  port: number;
  /**
   * Shuts down: /healthz (and gRPC health) answer 503/NOT_SERVING at once, the port keeps
   * serving for `announceMs` (default 0; `veil serve` passes --drain-ms) so load balancers
   * see it, then in-flight calls get up to `drainMs` (default 10 s) and the store closes.
   */
  close(options?: { drainMs?: number; announceMs?: number }): Promise<void>;
  /** Re-reads the TLS files (SIGHUP); a pair that does not load keeps the served one and throws. Without TLS, does nothing. */
  reloadTls(): void;
}

/** Starts Veil on `config.host:config.port` (port 0 picks a free one). */
export async function startServer(config: ServerConfig, options: { logger: Logger; env?: NodeJS.ProcessEnv; store?: KvStore }): Promise<VeilServer> {
  const logger = atLevel(options.logger, config.logLevel);
  if (options.store !== undefined || config.store === "etcd") checkAdvertisable(config);
  // Read before anything is created: a missing or unreadable file is a start-up error, not a half-made data dir.
  const tls = readTlsFiles(config);
  warnIfInsecure(config, logger);
  // A failed start takes back what it made: no half-made data dir, no operator token never printed.
  const before = dataDirBefore(config.dataDir);
  const rollback = (error: unknown) => {
    // Another server owns the dir: what is there (and new) is its, not ours to remove.
    if (!(error instanceof DataDirInUseError)) rollbackDataDir(config.dataDir, before);
    return error;
  };
  const app = await createApp(config, { ...options, logger, metrics: createMetrics({ processMetrics: true }) }).catch((error: unknown) => {
    throw rollback(error);
  });
  // Unary gRPC over HTTP/2 on a lean path, served on its stream before the wrappers and adapter (server/net/grpc-lean.ts); everything else is the adapter's.
  const unary = createGrpcLeanPath({
    interceptors: app.interceptors,
    readMaxBytes: LIMITS.messageBytes,
    encoders: HAND_ENCODERS,
  });
  const handler = connectNodeAdapter({
    routes: (router) => {
      app.routes(unary.record(router));
      guardDecoding(router, { readMaxBytes: LIMITS.messageBytes, logger });
      unary.seal(router);
    },
    interceptors: app.interceptors,
    readMaxBytes: LIMITS.messageBytes,
    // gzip of responses dominated CPU in streaming here, and loopback/LAN clients gain little from it.
    acceptCompression: [],
  });
  // Plain HTTP beside the RPCs, on the same port; the RPC paths stay the adapter's.
  const httpRoutes: HttpRoute[] = [
    healthzRoute(() => app.serving),
    metricsRoute(app.metrics.registry),
    createConsoleRoute(loadConsoleFiles(config.consoleDir ?? defaultConsoleDir())),
    createMcpRoute({ app, logger }),
  ];
  const served = withRequestId(withHttpRoutes(httpRoutes, withCors(withSpecGrpcMessage(withDeadlineCap(handler)), { allowedOrigins: corsOrigins(config) })));
  let listener: Awaited<ReturnType<typeof listen>>;
  try {
    listener = await listen(served, { host: config.host, port: config.port, streams: unary.take, ...(tls !== undefined ? { tls: { ...tls, anonymous: isAnonymousRequest } } : {}) });
  } catch (error) {
    await app.close();
    throw rollback(error);
  }
  try {
    await register(app, config, listener.url, logger);
  } catch (error) {
    await listener.close();
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
        if ((closeOptions.announceMs ?? 0) > 0) await new Promise((resolve) => setTimeout(resolve, closeOptions.announceMs));
        // Out of the registry as its conversations end: peers then answer for them with a clear error.
        await app.cluster.registry.close().catch(() => {});
        // Conversations first: a long-running command would otherwise hold the drain until its deadline.
        await app.conversations.closeAll();
        await listener.close(closeOptions.drainMs !== undefined ? { drainMs: closeOptions.drainMs } : {});
        await app.close();
      })();
      return closing;
    },
    reloadTls() {
      if (listener.reloadTls === undefined) return;
      listener.reloadTls(readTlsFiles(config)!);
    },
  };
}

/** Announces this server (id and advertise URL) to the others sharing its store, once it listens. */
async function register(app: VeilApp, config: ServerConfig, listenerUrl: string, logger: Logger): Promise<void> {
  const url = advertiseUrl(config, listenerUrl);
  if (url === undefined) return;
  await app.cluster.registry.register(url);
  logger.log("info", "server registered", { serverId: app.cluster.serverId, advertiseUrl: url });
}

/** `--cors-origin`: "*" alone means any origin; else the listed ones (the server's own is always allowed). */
function corsOrigins(config: ServerConfig): readonly string[] | "*" {
  return config.corsOrigins.includes("*") ? "*" : config.corsOrigins;
}
