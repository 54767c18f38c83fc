// The port's TLS files (--tls-cert, --tls-key, --tls-client-ca): read at start and on SIGHUP, and the warning for cleartext off loopback.
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { ConfigError, isLoopbackHost, type ServerConfig } from "../config.js";
import type { Logger } from "../log.js";
import type { TlsMaterial } from "./listener.js";

/** Reads the configured files; undefined without TLS. A file that cannot be read is a ConfigError naming its flag. */
export function readTlsFiles(config: ServerConfig): Pick<TlsMaterial, "cert" | "key" | "clientCa"> | undefined {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  const material = {
    cert: read(config.tlsCert, "--tls-cert"),
    key: read(config.tlsKey, "--tls-key"),
    ...(config.tlsClientCa !== undefined ? { clientCa: read(config.tlsClientCa, "--tls-client-ca") } : {}),
  };
  try {
    createSecureContext({ cert: material.cert, key: material.key, ...(material.clientCa !== undefined ? { ca: material.clientCa } : {}) });
  } catch (error) {
    // OpenSSL's reason ("key values mismatch", "no start line") names no key material.
    throw new ConfigError(`--tls-cert and --tls-key: the pair does not load (${(error as Error).message})`);
  }
  return material;
}

function read(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`${flag}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

/** `--insecure-listen` on a non-loopback host: allowed, but said at every start. */
export function warnIfInsecure(config: ServerConfig, logger: Logger): void {
  if (config.tlsCert === undefined && !isLoopbackHost(config.host)) {
    logger.log("warn", "--insecure-listen: serving cleartext on a non-loopback address; bearer tokens and secret values cross the network unencrypted. Give --tls-cert and --tls-key", {
      host: config.host,
    });
  }
}
