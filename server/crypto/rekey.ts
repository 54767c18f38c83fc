// Offline master-key replacement: re-wraps a stopped server's keyring under a new master key.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError } from "../config.js";
import { Keyring } from "./keyring.js";
import { createLogger } from "../log.js";
import { loadMasterKey } from "./master-key.js";
import { openLevelStore } from "../store/level-store.js";

/**
 * Opens the data dir with the current master key (refused if it does not match) and
 * re-wraps every generation under the new one. LevelDB's lock makes this fail while a
 * server holds the data dir.
 */
export async function rekeyDataDir(options: { dataDir: string; newKeyFile: string; masterKeyFile?: string; env?: NodeJS.ProcessEnv }): Promise<void> {
  const dataDir = resolve(options.dataDir);
  if (!existsSync(join(dataDir, "db"))) throw new ConfigError(`--data-dir: ${dataDir} holds no Veil data`);
  const current = loadMasterKey({ env: options.env ?? process.env, dataDir, logger: createLogger(() => {}), ...(options.masterKeyFile !== undefined ? { file: options.masterKeyFile } : {}) });
  const next = Buffer.from(readFileSync(options.newKeyFile, "utf8").trim(), "base64");
  if (next.length !== 32) throw new ConfigError("--new-master-key-file: must hold base64 of exactly 32 bytes");
  const store = await openLevelStore(join(dataDir, "db")).catch((cause: unknown) => {
    throw new ConfigError(`--data-dir: cannot open ${dataDir} (is a server running on it?)`, { cause });
  });
  try {
    const keyring = await Keyring.open(store, current, { watch: false });
    await keyring.rekey(new Uint8Array(next));
  } finally {
    await store.close();
  }
  const embedded = !(options.env ?? process.env).VEIL_MASTER_KEY && options.masterKeyFile === undefined;
  if (embedded) {
    // The server reads the embedded default next time: it must hold the new key (replaced atomically).
    const path = join(dataDir, "master.key");
    writeFileSync(`${path}.new`, `${next.toString("base64")}\n`, { mode: 0o600 });
    renameSync(`${path}.new`, path);
  }
}
