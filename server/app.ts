// Assembles Veil: data dir, store, keyring, domain objects, and the routes and interceptors over them.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import type { ServerConfig } from "./config.js";
import { type Audit, createAudit } from "./domain/audit.js";
import { createConversations, type Conversations } from "./domain/conversations.js";
import { createExtraSecrets } from "./domain/extra-secrets.js";
import { createRotation, type Rotation, secretValueSource } from "./domain/rotation.js";
import { createSealer } from "./domain/sealed.js";
import { createSettings, type Settings, settingsBlobSource } from "./domain/settings.js";
import { detectSandbox, limitMechanisms } from "./domain/executor.js";
import { Keyring } from "./domain/keyring.js";
import { VeilError } from "./domain/errors.js";
import { createTokens, type Tokens } from "./domain/tokens.js";
import { createVault, type Vault } from "./domain/vault.js";
import type { Logger } from "./log.js";
import { loadMasterKey } from "./master-key.js";
import { createAuditInterceptor } from "./rpc/audit.js";
import { createAuthInterceptor } from "./rpc/auth.js";
import { createErrorInterceptor } from "./rpc/errors.js";
import { createLoggingInterceptor } from "./rpc/logging.js";
import { createRoutes } from "./routes.js";
import type { KvStore } from "./store/kv.js";
import { openLevelStore } from "./store/level-store.js";

/** A running Veil core, transport-free: what tests wrap in a router transport or a real server. */
export interface VeilApp {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  store: KvStore;
  keyring: Keyring;
  vault: Vault;
  tokens: Tokens;
  conversations: Conversations;
  settings: Settings;
  audit: Audit;
  rotation: Rotation;
  /** The operator token's plaintext, only on the first start of a data dir. */
  operatorToken: string | undefined;
  /** False once shutdown began: health then answers NOT_SERVING. */
  serving: boolean;
  close(): Promise<void>;
}

/** Opens the data dir and builds the app. A wrong master key or an unusable data dir throws. */
export async function createApp(config: ServerConfig, options: { logger: Logger; env?: NodeJS.ProcessEnv }): Promise<VeilApp> {
  const { logger } = options;
  // Checked first: `--sandbox required` on a machine without bubblewrap must refuse to start.
  const sandbox = await detectSandbox(config.sandbox).catch((error: unknown) => {
    throw new VeilError("failed_precondition", `--sandbox required: ${(error as Error).message}`);
  });
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const masterKey = loadMasterKey({ env: options.env ?? process.env, dataDir: config.dataDir, logger, ...(config.masterKeyFile !== undefined ? { file: config.masterKeyFile } : {}) });
  const store = await openLevelStore(join(config.dataDir, "db"));
  let keyring: Keyring;
  try {
    keyring = await Keyring.open(store, masterKey);
  } catch (error) {
    await store.close();
    throw error;
  }
  const rotation = createRotation({
    store,
    keyring,
    sources: [secretValueSource, settingsBlobSource],
    ratePerSecond: config.reencryptRate,
    log: (msg, fields) => logger.log("info", msg, fields),
  });
  try {
    // Picks up a rotation a crash interrupted; refuses to start if a retired generation is still needed.
    await rotation.resume();
  } catch (error) {
    await store.close();
    throw error;
  }
  const vault = createVault(store, keyring);
  const tokens = createTokens(store);
  const audit = createAudit(store);
  const settings = createSettings(store, keyring);
  const sealer = createSealer(keyring);
  const operatorToken = await tokens.bootstrapOperator();
  if (operatorToken !== undefined) writeAdminToken(config.dataDir, operatorToken);
  const conversations = createConversations({
    workRoot: join(config.dataDir, "workspaces"),
    sandbox: sandbox.kind,
    idleTimeoutMs: config.idleTimeoutMs,
    maxPerTenant: config.maxConversationsPerTenant,
    resources: {
      maxProcesses: config.maxProcesses,
      memoryBytes: config.memoryLimitBytes,
      diskBytes: config.diskLimitBytes,
      fileSizeBytes: config.fileSizeLimitBytes,
    },
  });
  logger.log("info", "sandbox", { mode: config.sandbox, kind: sandbox.kind });
  logger.log("info", "limits", { ...limitMechanisms() });

  const app: VeilApp = {
    routes: () => {},
    interceptors: [createLoggingInterceptor(logger), createErrorInterceptor(logger), createAuthInterceptor(tokens), createAuditInterceptor(audit)],
    store,
    keyring,
    vault,
    tokens,
    conversations,
    settings,
    audit,
    rotation,
    operatorToken,
    serving: true,
    async close() {
      app.serving = false;
      await conversations.closeAll();
      await rotation.stop();
      await store.close();
    },
  };
  app.routes = createRoutes({
    vault,
    tokens,
    conversations,
    settings,
    sealer,
    audit,
    rotation,
    extraSecrets: createExtraSecrets({ sealer, settings }),
    defaultTimeoutMs: config.commandTimeoutMs,
    outputLimitBytes: config.outputLimitBytes,
    isServing: () => app.serving,
  });
  return app;
}

/** The operator token file: 0600, so only the server's user can read it. */
function writeAdminToken(dataDir: string, token: string) {
  const path = join(dataDir, "admin.token");
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  if (existsSync(path)) chmodSync(path, 0o600);
}
