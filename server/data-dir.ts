// The data dir's life cycle: one server at a time (LevelDB's lock, and a pid file saying whose), and undoing a failed first start.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { VeilError } from "./errors.js";
import type { KvStore } from "./store/kv.js";
import { type LevelStoreOptions, openLevelStore } from "./store/level-store.js";

/** Beside LevelDB's LOCK: the pid of the server holding the data dir, for the message a second one prints. */
export const PID_FILE = "veil.pid";

/** Another process holds the data dir: a second server must not start (nothing of the dir is touched). */
export class DataDirInUseError extends VeilError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("failed_precondition", message, options);
  }
}

/** True when a process with this pid exists (EPERM: it exists but is another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid recorded in the data dir, if any process by that pid still runs (a stale file is ignored). */
export function holderPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, PID_FILE), "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Opens the data dir's store and records our pid beside it. LevelDB's lock is what keeps a
 * second server out (the kernel drops it when a process dies, so a crash leaves nothing to
 * clean); the pid file only names the holder, and a stale one is simply overwritten.
 */
export async function openDataDirStore(dataDir: string, options: LevelStoreOptions = {}): Promise<KvStore> {
  let store: KvStore;
  try {
    store = await openLevelStore(join(dataDir, "db"), options);
  } catch (error) {
    if ((error as { cause?: { code?: string } }).cause?.code !== "LEVEL_LOCKED") throw error;
    const pid = holderPid(dataDir);
    throw new DataDirInUseError(
      pid !== undefined
        ? `data dir ${dataDir} in use by pid ${pid}: stop that server first, or give this one its own --data-dir`
        : `data dir ${dataDir} in use by another process (its LevelDB lock is held): stop it first, or give this server its own --data-dir`,
      { cause: error },
    );
  }
  writeFileSync(join(dataDir, PID_FILE), `${process.pid}\n`, { mode: 0o644 });
  return store;
}

/** Removes the pid file if it is still ours (called after the store is closed). */
export function releasePidFile(dataDir: string): void {
  const path = join(dataDir, PID_FILE);
  try {
    if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
  } catch {
    // Already gone.
  }
}

/** What the data dir held before a start: undefined when it did not exist. */
export type DataDirBefore = ReadonlySet<string> | undefined;

/** Records the data dir's entries before a start, so a failed start can take back what it made. */
export function dataDirBefore(dataDir: string): DataDirBefore {
  return existsSync(dataDir) ? new Set(readdirSync(dataDir)) : undefined;
}

/**
 * After a failed start: removes every entry the start created (store, master key, operator
 * token file, egress CA), and the dir itself if the start created it, so no half-made data
 * dir and no operator token that was never printed stay behind. Entries that were there
 * before are left alone.
 */
export function rollbackDataDir(dataDir: string, before: DataDirBefore): void {
  if (!existsSync(dataDir)) return;
  for (const name of readdirSync(dataDir)) if (!before?.has(name)) rmSync(join(dataDir, name), { recursive: true, force: true });
  if (before === undefined && readdirSync(dataDir).length === 0) rmSync(dataDir, { recursive: true, force: true });
}
