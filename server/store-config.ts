// Opens the store `--store` names: LevelDB in the data dir (with its pid file), or the etcd cluster of --etcd-endpoints.
import { readFileSync } from "node:fs";
import { ConfigError, type EtcdConfig, type ServerConfig } from "./config.js";
import { openDataDirStore, releasePidFile } from "./data-dir.js";
import { VeilError } from "./errors.js";
import type { KvStore } from "./store/kv.js";
import { openEtcdStore } from "./store/etcd-store.js";

/** An open store and how to give it back (LevelDB: also its pid file). */
export interface OpenedStore {
  store: KvStore;
  close(): Promise<void>;
}

/**
 * Servers sharing etcd must share one master key, so it is never the embedded default a
 * data dir would make for itself: refuse to start without VEIL_MASTER_KEY or --master-key-file.
 */
export function requireSharedMasterKey(config: ServerConfig, env: NodeJS.ProcessEnv): void {
  if (config.store !== "etcd") return;
  if ((env.VEIL_MASTER_KEY ?? "") === "" && config.masterKeyFile === undefined) {
    throw new ConfigError("--store etcd needs the master key every server shares: set VEIL_MASTER_KEY or --master-key-file (there is no embedded default with etcd)");
  }
}

function readFileFor(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new VeilError("failed_precondition", `${flag}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/** The password of --etcd-username: VEIL_ETCD_PASSWORD, or the first line of --etcd-password-file. */
function etcdPassword(etcd: EtcdConfig, env: NodeJS.ProcessEnv): string {
  const fromEnv = env.VEIL_ETCD_PASSWORD ?? "";
  if (fromEnv !== "") return fromEnv;
  const text = readFileFor("--etcd-password-file", etcd.passwordFile!).toString("utf8").replace(/\r?\n$/, "");
  if (text === "") throw new VeilError("failed_precondition", "--etcd-password-file: the file is empty");
  return text;
}

/** Opens the configured store; etcd's TLS and credential files are read here, once. */
export async function openConfiguredStore(config: ServerConfig, options: { env: NodeJS.ProcessEnv; onBatch?: (writes: number) => void }): Promise<OpenedStore> {
  if (config.store !== "etcd" || config.etcd === undefined) {
    const store = await openDataDirStore(config.dataDir, options.onBatch !== undefined ? { onBatch: options.onBatch } : {});
    return {
      store,
      close: async () => {
        await store.close();
        releasePidFile(config.dataDir);
      },
    };
  }
  const etcd = config.etcd;
  const tls = {
    ...(etcd.caFile !== undefined ? { ca: readFileFor("--etcd-ca-file", etcd.caFile) } : {}),
    ...(etcd.certFile !== undefined ? { cert: readFileFor("--etcd-cert-file", etcd.certFile) } : {}),
    ...(etcd.keyFile !== undefined ? { key: readFileFor("--etcd-key-file", etcd.keyFile) } : {}),
  };
  const store = await openEtcdStore({
    endpoints: etcd.endpoints,
    prefix: etcd.prefix,
    maxTxnOps: etcd.maxTxnOps,
    maxRequestBytes: etcd.maxRequestBytes,
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    ...(etcd.username !== undefined ? { auth: { username: etcd.username, password: etcdPassword(etcd, options.env) } } : {}),
    ...(options.onBatch !== undefined ? { onBatch: options.onBatch } : {}),
  });
  return { store, close: () => store.close() };
}
