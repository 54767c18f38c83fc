// Offline restore: recreates a data dir's store from a verified backup file, into an absent or empty dir.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError } from "../config.js";
import type { KvOp } from "../store/kv.js";
import { assertLayoutSupported } from "../layout.js";
import { openLevelStore } from "../store/level-store.js";
import { type BackupHeader, openBackupFile } from "./backup-file.js";

/** Entries per atomic write while restoring: big batches, still far below LevelDB's comfort limit. */
const BATCH = 1000;

/** What a restore wrote. */
export interface RestoreResult {
  dataDir: string;
  header: BackupHeader;
}

/** Refuses anything but an absent or empty directory: a restore never overwrites or merges. */
function checkTarget(dataDir: string): "absent" | "empty" {
  if (!existsSync(dataDir)) return "absent";
  if (!statSync(dataDir).isDirectory()) throw new ConfigError(`--data-dir: ${dataDir} exists and is not a directory; restore into an absent or empty dir`);
  if (readdirSync(dataDir).length > 0) throw new ConfigError(`--data-dir: ${dataDir} is not empty; restore into an absent or empty dir (nothing is overwritten or merged)`);
  return "empty";
}

/**
 * Restores a backup into `dataDir`: the checksum and layout are checked before anything is
 * created; on any failure what the restore made is removed again. Needs no master key (values
 * stay ciphertext), but a server on the result needs the one the backup was made under.
 */
export async function restoreBackup(options: { file: string; dataDir: string }): Promise<RestoreResult> {
  const dataDir = resolve(options.dataDir);
  const target = checkTarget(dataDir);
  const backup = await openBackupFile(resolve(options.file));
  try {
    assertLayoutSupported(backup.header.layout, "the backup");
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    try {
      const store = await openLevelStore(join(dataDir, "db"));
      try {
        let ops: KvOp[] = [];
        for await (const [key, value] of backup.entries()) {
          ops.push({ type: "put", key, value });
          if (ops.length >= BATCH) {
            await store.write(ops);
            ops = [];
          }
        }
        if (ops.length > 0) await store.write(ops);
      } finally {
        await store.close();
      }
    } catch (error) {
      if (target === "absent") rmSync(dataDir, { recursive: true, force: true });
      else for (const name of readdirSync(dataDir)) rmSync(join(dataDir, name), { recursive: true, force: true });
      throw error;
    }
    return { dataDir, header: backup.header };
  } finally {
    await backup.close();
  }
}
