// Finds the master key: VEIL_MASTER_KEY, a key file, or the embedded default in the data dir.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log.js";
import { ConfigError } from "../config.js";

/** Decodes base64 of exactly 32 bytes, or says which source was wrong. */
function decodeKey(text: string, source: string): Uint8Array {
  const key = Buffer.from(text.trim(), "base64");
  if (key.length !== 32) throw new ConfigError(`${source}: must be base64 of exactly 32 bytes`);
  return new Uint8Array(key);
}

/**
 * VEIL_MASTER_KEY wins, then --master-key-file; with neither, `<data-dir>/master.key`
 * is created (0600) on first use, with one warning: the key then sits beside the data.
 */
export function loadMasterKey(options: { env: NodeJS.ProcessEnv; file?: string; dataDir: string; logger: Logger }): Uint8Array {
  const fromEnv = options.env.VEIL_MASTER_KEY;
  if (fromEnv !== undefined && fromEnv !== "") return decodeKey(fromEnv, "VEIL_MASTER_KEY");
  if (options.file !== undefined) {
    if (!existsSync(options.file)) throw new ConfigError(`--master-key-file: ${options.file} does not exist`);
    return decodeKey(readFileSync(options.file, "utf8"), "--master-key-file");
  }
  const path = join(options.dataDir, "master.key");
  if (!existsSync(path)) writeFileSync(path, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600, flag: "wx" });
  options.logger.log("warn", "using the embedded master key beside the data; set VEIL_MASTER_KEY or --master-key-file in production", { path });
  return decodeKey(readFileSync(path, "utf8"), path);
}
