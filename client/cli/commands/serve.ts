// `veil serve`: runs the server until SIGTERM/SIGINT, then drains and closes the store.
import { ConfigError, parseServerConfig, SERVE_FLAGS } from "../../../server/config.js";
import { VeilError } from "../../../server/errors.js";
import { createLogger, type Logger } from "../../../server/log.js";
import type { startServer, VeilServer } from "../../../server/server.js";
import type { Command } from "../command.js";
import { EXIT } from "../io.js";

const help = `Usage: veil serve [options]

Runs the Veil server: gRPC, gRPC-Web and Connect on one port, LevelDB in the data dir
(or an etcd cluster several servers share: --store etcd --etcd-endpoints URL[,URL...]).

Options (each also from its environment variable):
${SERVE_FLAGS.map((f) => `  ${`${f.flag}${f.isSwitch ? "" : f.flag === "--sandbox" ? " MODE" : " VALUE"}`.padEnd(32)} ${f.env}${f.default !== undefined ? ` (default ${f.default})` : ""}`).join("\n")}
  VEIL_MASTER_KEY                  base64 of 32 bytes; wins over --master-key-file (required with --store etcd, or the file)
  VEIL_ETCD_PASSWORD               the password of --etcd-username (or --etcd-password-file)

SIGTERM: /healthz answers 503 while the port serves on for --drain-ms, then in-flight calls
drain and the store closes; SIGINT drains at once. SIGHUP (with TLS) reloads the certificate files.`;

export const serveCommand: Command = {
  name: "serve",
  summary: "run the server",
  help,
  async run(argv) {
    const logger = createLogger();
    let server: Awaited<ReturnType<typeof startServer>>;
    let config: ReturnType<typeof parseServerConfig>;
    try {
      config = parseServerConfig(argv);
      // Loaded here, not at the top: every other command would otherwise pay for the server's modules (prom-client, LevelDB, ...).
      const { startServer } = await import("../../../server/server.js");
      server = await startServer(config, { logger });
    } catch (error) {
      if (error instanceof ConfigError || error instanceof VeilError) {
        process.stderr.write(`veil serve: ${error.message}\n`);
        return EXIT.usage;
      }
      if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
        process.stderr.write(`veil serve: the port is already in use (pick another with --port)\n`);
        return EXIT.usage;
      }
      throw error;
    }
    if (server.app.operatorToken !== undefined) {
      process.stdout.write(
        `Operator token (shown once; also saved to the data dir's admin.token, mode 0600):\n${server.app.operatorToken}\n`,
      );
    }
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.log("info", "draining", { signal });
        // SIGTERM (orchestrators): /healthz answers 503 for --drain-ms while the port still serves, so
        // load balancers move away first. SIGINT (Ctrl-C at a terminal) does not wait for that.
        void server.close({ announceMs: signal === "SIGTERM" ? config.drainMs : 0 }).then(resolve);
      };
      if (config.tlsCert !== undefined) process.on("SIGHUP", () => reloadTls(server, logger));
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
    // Only once the handlers are in place: whoever waits for this line may send SIGTERM at once.
    logger.log("info", "listening", { url: server.url });
    await stopped;
    logger.log("info", "stopped");
    return EXIT.ok;
  },
};

/** SIGHUP: new connections get the re-read certificate; a pair that does not load keeps the old one. */
function reloadTls(server: VeilServer, logger: Logger): void {
  try {
    server.reloadTls();
    logger.log("info", "tls: certificate reloaded", {});
  } catch (error) {
    logger.log("error", `tls: certificate not reloaded, still serving the previous one: ${(error as Error).message}`, {});
  }
}
