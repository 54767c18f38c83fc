// Offline recovery of the operator token: with the master key, revoke every operator token and mint a new one.
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError } from "./config.js";
import { holderPid } from "./data-dir.js";
import { checkLayout } from "./layout.js";
import { createAudit } from "./domain/audit.js";
import { Keyring } from "./crypto/keyring.js";
import { DEFAULT_TENANT } from "./domain/principal.js";
import { createTokens } from "./domain/tokens.js";
import { createLogger } from "./log.js";
import { loadMasterKey } from "./crypto/master-key.js";
import { openLevelStore } from "./store/level-store.js";
import type { KvStore } from "./store/kv.js";

/** What a reset did: the new token (plaintext, shown once) and the ids it revoked. */
export interface OperatorReset {
  token: string;
  tokenId: string;
  revokedIds: string[];
  tokenFile: string;
}

/** The master key as `veil serve` finds it, except that a missing embedded key is an error, never a fresh one. */
function masterKeyFor(dataDir: string, env: NodeJS.ProcessEnv, masterKeyFile: string | undefined): Uint8Array {
  const file = masterKeyFile ?? (env.VEIL_MASTER_KEY_FILE || undefined);
  if (!env.VEIL_MASTER_KEY && file === undefined && !existsSync(join(dataDir, "master.key"))) {
    throw new ConfigError(`master key: ${dataDir} has no master.key; set VEIL_MASTER_KEY or --master-key-file to the key it was created with`);
  }
  return loadMasterKey({ env, dataDir, logger: createLogger(() => {}), ...(file !== undefined ? { file } : {}) });
}

/** Opens the store, or explains that a running server holds it. */
async function openStopped(dataDir: string): Promise<KvStore> {
  return openLevelStore(join(dataDir, "db")).catch((error: unknown) => {
    const locked = (error as { cause?: { code?: string } }).cause?.code === "LEVEL_LOCKED";
    const pid = locked ? holderPid(dataDir) : undefined;
    throw new ConfigError(
      locked
        ? `--data-dir: ${dataDir} is in use${pid !== undefined ? ` by pid ${pid}` : " (its LevelDB lock is held)"}: stop the server first, then run reset-operator`
        : `--data-dir: cannot open ${dataDir}: ${(error as Error).message}`,
      { cause: error },
    );
  });
}

/** Writes `<data-dir>/admin.token` (0600) through a rename, so a reader never sees half a token. */
function writeTokenFile(path: string, token: string) {
  writeFileSync(`${path}.new`, `${token}\n`, { mode: 0o600 });
  renameSync(`${path}.new`, path);
}

/**
 * Resets the operator token of a stopped server's data dir. Opening the keyring proves
 * the caller holds the master key (a wrong one is refused before anything changes); the
 * revocations, the new token and its audit event land in one atomic write.
 */
export async function resetOperatorToken(options: { dataDir: string; masterKeyFile?: string; env?: NodeJS.ProcessEnv }): Promise<OperatorReset> {
  const dataDir = resolve(options.dataDir);
  if (!existsSync(join(dataDir, "db"))) throw new ConfigError(`--data-dir: ${dataDir} holds no Veil data`);
  const masterKey = masterKeyFor(dataDir, options.env ?? process.env, options.masterKeyFile);
  const store = await openStopped(dataDir);
  try {
    // Older code must not rewrite a newer layout's tokens.
    await checkLayout(store);
    await Keyring.open(store, masterKey, { watch: false });
    const audit = createAudit(store);
    const reset = await createTokens(store).resetOperator((fresh, revoked) =>
      audit.ops({
        tenant: DEFAULT_TENANT,
        tokenId: fresh.id,
        action: "token.reset",
        outcome: "ok",
        detail: `offline with the master key; new ${fresh.id}; revoked ${revoked.map((r) => r.id).join(", ") || "none"}`,
      }),
    );
    const tokenFile = join(dataDir, "admin.token");
    writeTokenFile(tokenFile, reset.token);
    return { token: reset.token, tokenId: reset.record.id, revokedIds: reset.revoked.map((r) => r.id), tokenFile };
  } finally {
    await store.close();
  }
}
