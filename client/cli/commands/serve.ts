// `veil serve`: runs the server until SIGTERM/SIGINT, then drains and closes the store.
import { ConfigError, parseServerConfig, SERVE_FLAGS } from "../../../server/config.js";
import { VeilError } from "../../../server/domain/errors.js";
import { createLogger } from "../../../server/log.js";
import { startServer } from "../../../server/server.js";
import type { Command } from "../command.js";
import { EXIT } from "../io.js";

const help = `Usage: veil serve [options]

Runs the Veil server: gRPC, gRPC-Web and Connect on one port, LevelDB in the data dir.

Options (each also from its environment variable):
${SERVE_FLAGS.map((f) => `  ${`${f.flag}${f.isSwitch ? "" : f.flag === "--sandbox" ? " MODE" : " VALUE"}`.padEnd(32)} ${f.env}${f.default !== undefined ? ` (default ${f.default})` : ""}`).join("\n")}
  VEIL_MASTER_KEY                  base64 of 32 bytes; wins over --master-key-file

SIGTERM or SIGINT drains in-flight calls and closes the store.`;

export const serveCommand: Command = {
  name: "serve",
  summary: "run the server",
  help,
  async run(argv) {
    const logger = createLogger();
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer(parseServerConfig(argv), { logger });
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
        void server.close().then(resolve);
      };
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
