// Assembles Veil: data dir, store, keyring, domain objects, and the routes and interceptors over them.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DescMethod } from "@bufbuild/protobuf";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import type { ServerConfig } from "./config.js";
import { createAgentDirectory } from "./domain/agents.js";
import { type Audit, createAudit } from "./domain/audit.js";
import { createConversations, type Conversations } from "./domain/conversations.js";
import { createExtraSecrets } from "./domain/extra-secrets.js";
import { createLookups } from "./domain/lookups.js";
import { createReferences } from "./domain/references.js";
import { createRotation, type Rotation } from "./crypto/rotation.js";
import { createSealer } from "./crypto/sealed-tokens.js";
import { createSettings, type Settings } from "./domain/settings.js";
import { detectSandbox, type SandboxStatus } from "./domain/executor.js";
import { isRoot, reapStaleUsers } from "./domain/executor/dynamic-user.js";
import { sandboxUnavailableMessage } from "./domain/executor/sandbox.js";
import { openWorkDir, type WorkDir } from "./domain/work-dir.js";
import { limitMechanisms } from "./domain/executor.js";
import { createGateway, type Gateway } from "./egress/gateway.js";
import type { GatewayIdentity } from "./egress/identity.js";
import { createBarrier } from "./crypto/barrier.js";
import { Keyring } from "./crypto/keyring.js";
import { VeilError } from "./errors.js";
import { createTokens, type Tokens } from "./domain/tokens.js";
import { createVault, type Vault } from "./domain/vault.js";
import type { Logger } from "./log.js";
import { loadMasterKey } from "./crypto/master-key.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { clearStaleEntries, createRegistry, type Registry } from "./cluster/registry.js";
import { withForwarding } from "./cluster/forwarding.js";
import { createPeerProof } from "./cluster/peer-proof.js";
import { peerTls } from "./cluster/peer-tls.js";
import { randomServerId } from "./domain/conversation-id.js";
import { createAuditInterceptor } from "./rpc/audit.js";
import { createAuthInterceptor } from "./rpc/auth.js";
import { createErrorInterceptor } from "./rpc/errors.js";
import { createLoggingInterceptor } from "./rpc/logging.js";
import { createMetricsInterceptor } from "./rpc/metrics.js";
import { type MethodRule, RPC_RULES } from "./rpc/rules.js";
import { createValidationInterceptor } from "./rpc/validate.js";
import { createRoutes } from "./routes.js";
import type { KvStore } from "./store/kv.js";
import { checkLayout } from "./layout.js";
import { openConfiguredStore, requireSharedMasterKey } from "./store-config.js";

/** A running Veil core, transport-free: what tests wrap in a router transport or a real server. */
export interface VeilApp {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  /** The RPC rules the interceptors read (RPC_RULES); a service served beside `routes` (the bench's) adds its methods' rules here. */
  rules: Map<DescMethod, MethodRule>;
  store: KvStore;
  keyring: Keyring;
  vault: Vault;
  tokens: Tokens;
  conversations: Conversations;
  settings: Settings;
  audit: Audit;
  rotation: Rotation;
  /** What `/metrics` renders. */
  metrics: Metrics;
  /** The operator token's plaintext, only on the first start of a data dir. */
  operatorToken: string | undefined;
  /** False once shutdown began: health then answers NOT_SERVING. */
  serving: boolean;
  /** This server among the servers sharing its store: its id, and its registration once it listens. */
  cluster: { serverId: string; registry: Registry; sharedStore: boolean };
  close(): Promise<void>;
}

/** Opens the data dir and builds the app. A wrong master key or an unusable data dir throws. */
export async function createApp(
  config: ServerConfig,
  options: { logger: Logger; env?: NodeJS.ProcessEnv; metrics?: Metrics; /** Shared with other apps (tests: one memory store as several servers' etcd). */ store?: KvStore },
): Promise<VeilApp> {
  const { logger } = options;
  const metrics = options.metrics ?? createMetrics();
  // Without a usable bubblewrap the server still serves the vault; only commands are refused (and it says so once, here).
  const sandbox = await detectSandbox(config.sandbox, { bwrap: config.bwrap });
  logSandbox(logger, config, sandbox);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // The server's files are its own: commands running as another uid must not even list them.
  if (statSync(config.dataDir).uid === process.getuid?.()) chmodSync(config.dataDir, 0o700);
  warnIfReadable(logger, config.masterKeyFile);
  const env = options.env ?? process.env;
  requireSharedMasterKey(config, env);
  const masterKey = loadMasterKey({ env, dataDir: config.dataDir, logger, ...(config.masterKeyFile !== undefined ? { file: config.masterKeyFile } : {}) });
  // An injected store (tests: one memory store as several servers' etcd) is its owner's to close.
  const sharedStore = options.store !== undefined || config.store === "etcd";
  const { store, close: closeStore } = options.store !== undefined ? { store: options.store, close: async () => {} } : await openConfiguredStore(config, { env, onBatch: metrics.storeBatch });
  let keyring: Keyring;
  try {
    // Before anything reads a key: a newer layout may mean something else by the same keys.
    // Under a store-wide lock: servers starting at once on an empty or older store create one
    // keyring and migrate the layout once. The keyring then watches its own key, so a generation
    // another server adds is picked up at once.
    keyring = await store.withLock("startup", async () => {
      await checkLayout(store);
      return Keyring.open(store, masterKey, { log: (level, msg, fields) => logger.log(level, msg, fields) });
    });
  } catch (error) {
    await closeStore();
    throw error;
  }
  // The one place values are sealed: the vault and settings hand it plaintext and a store path; rotation walks its families.
  const barrier = createBarrier(keyring);
  const rotation = createRotation({
    store,
    keyring,
    barrier,
    ratePerSecond: config.reencryptRate,
    log: (msg, fields) => logger.log("info", msg, fields),
  });
  try {
    // Picks up a rotation a crash interrupted; refuses to start if a retired generation is still needed.
    await rotation.resume();
  } catch (error) {
    keyring.close();
    await closeStore();
    throw error;
  }
  const serverId = config.serverId ?? randomServerId();
  const registry = createRegistry(store, serverId);
  if (!sharedStore) await clearStaleEntries(store);
  const vault = createVault(store, barrier);
  const tokens = createTokens(store);
  const audit = countAuditFailures(createAudit(store, { node: serverId }), metrics);
  const settings = createSettings(store, barrier);
  const sealer = createSealer(keyring);
  let lookups: ReturnType<typeof createLookups>;
  try {
    lookups = createLookups({ vault, fetch: lookupFetchOptions(config, logger) });
  } catch (error) {
    await store.close();
    throw error;
  }
  const operatorToken = await tokens.bootstrapOperator();
  if (operatorToken !== undefined) writeAdminToken(config.dataDir, operatorToken);
  if (isRoot()) {
    const reaped = await reapStaleUsers();
    if (reaped.length > 0) logger.log("info", "killed the commands of conversations whose server is gone", { uids: reaped });
  }
  // Workspaces used to live in the data dir; a crash there left them behind.
  rmSync(join(config.dataDir, "workspaces"), { recursive: true, force: true });
  let workDir: WorkDir;
  try {
    workDir = openWorkDir(config.workDir, (msg, fields) => logger.log("info", msg, fields));
  } catch (error) {
    await closeStore();
    throw new VeilError("failed_precondition", `--work-dir: ${(error as Error).message}`);
  }
  let gateway: Gateway;
  try {
    gateway = await createEgressGateway(config, workDir, audit, logger);
  } catch (error) {
    workDir.close();
    await closeStore();
    throw error;
  }
  const conversations = createConversations({
    workDir,
    egress: {
      files: { bundle: gateway.sandboxFiles.caBundle, caCert: gateway.sandboxFiles.caCert },
      // The binding is what the gateway serves that shell's connections as.
      attach: (binding, listener) => gateway.attach(binding as GatewayIdentity, listener),
    },
    sandbox,
    hidden: [config.dataDir, ...(config.masterKeyFile !== undefined ? [config.masterKeyFile] : [])],
    idleTimeoutMs: config.idleTimeoutMs,
    observer: metrics.conversations,
    maxPerTenant: config.maxConversationsPerTenant,
    serverId,
    resources: {
      maxProcesses: config.maxProcesses,
      memoryBytes: config.memoryLimitBytes,
      diskBytes: config.diskLimitBytes,
      fileSizeBytes: config.fileSizeLimitBytes,
    },
  });
  logger.log("info", "limits", { ...limitMechanisms() });

  const rules = new Map(RPC_RULES);
  const app: VeilApp = {
    routes: () => {},
    interceptors: [
      createMetricsInterceptor(metrics),
      createLoggingInterceptor(logger),
      createErrorInterceptor(logger),
      createAuthInterceptor(tokens, rules),
      createAuditInterceptor(audit, rules),
      createValidationInterceptor(rules),
    ],
    rules,
    store,
    keyring,
    vault,
    tokens,
    conversations,
    settings,
    audit,
    rotation,
    metrics,
    operatorToken,
    serving: true,
    cluster: { serverId, registry, sharedStore },
    async close() {
      app.serving = false;
      // Out of the registry first: peers then answer for its conversations at once, with a clear error.
      await registry.close().catch(() => {});
      await conversations.closeAll();
      tokens.close();
      gateway.close();
      await rotation.stop();
      keyring.close();
      await closeStore();
    },
  };
  metrics.watch({ liveConversations: () => conversations.size, rotation: () => rotation.status() });
  app.routes = createRoutes({
    rules,
    vault,
    tokens,
    conversations,
    settings,
    sealer,
    audit,
    agents: createAgentDirectory(tokens, vault),
    rotation,
    store,
    extraSecrets: createExtraSecrets({ sealer, settings }),
    lookups,
    references: createReferences({ vault, lookups }),
    defaultTimeoutMs: config.commandTimeoutMs,
    outputLimitBytes: config.outputLimitBytes,
    isServing: () => app.serving,
    forwarding: (service) => withForwarding(service, { selfId: serverId, registry, proof: createPeerProof(masterKey, serverId), logger, ...withTls(peerTls(config)) }),
  });
  return app;
}

/** `{ tls }` when there is TLS to use (exactOptionalPropertyTypes: never `tls: undefined`). */
function withTls<T>(tls: T | undefined): { tls?: T } {
  return tls === undefined ? {} : { tls };
}

/** One line at start saying where commands run; a warning whenever that is not a working bubblewrap as an unprivileged user. */
function logSandbox(logger: Logger, config: ServerConfig, sandbox: SandboxStatus) {
  const asRoot = isRoot();
  if (sandbox.kind === "unavailable") {
    logger.log("warn", sandboxUnavailableMessage(sandbox.problem), { sandbox: config.sandbox, kind: "unavailable" });
  } else if (sandbox.kind === "none") {
    const user = asRoot
      ? "each conversation runs as its own unprivileged uid, so it cannot read the server's files or other workspaces, but it sees the host's file system, network and process list"
      : "commands run as the server's own user: they can read its data dir, master key and operator token, its /proc environ, and reach any local port";
    logger.log("warn", `--sandbox off: commands run without bubblewrap; ${user}. Install bubblewrap and drop --sandbox off to isolate them.`, {
      sandbox: "off",
      kind: "none",
    });
  } else if (sandbox.fallback !== undefined) {
    logger.log("warn", "sandbox: unprivileged user namespaces do not work here, so bwrap runs as root (mapped to uid 1000 inside)", {
      sandbox: config.sandbox,
      kind: "bubblewrap",
      bwrap: sandbox.bwrap,
      runsAs: "root",
      problem: sandbox.fallback,
    });
  } else {
    logger.log("info", "sandbox", { sandbox: config.sandbox, kind: "bubblewrap", bwrap: sandbox.bwrap, runsAs: sandbox.asUser ? "conversation uid" : "server uid" });
  }
}

/** How lookups dial: the extra CA (read once, here), and the private-address switch (a warning when on). */
function lookupFetchOptions(config: ServerConfig, logger: Logger) {
  if (config.allowPrivateLookups) {
    // Unsafe by name: an admin's lookup URL may then reach loopback and private networks (cloud metadata included).
    logger.log("warn", "--allow-private-lookups: lookup secrets may fetch from loopback and private addresses", {});
  }
  let extraCa: string | undefined;
  if (config.lookupCaFile !== undefined) {
    try {
      extraCa = readFileSync(config.lookupCaFile, "utf8");
    } catch (error) {
      throw new VeilError("failed_precondition", `--lookup-ca-file: cannot read ${config.lookupCaFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
    }
  }
  return { allowPrivate: config.allowPrivateLookups, ...(extraCa !== undefined ? { extraCa } : {}) };
}

/** Audit writes that fail (the action is then refused) are counted: an operator must hear of a full disk. */
function countAuditFailures(audit: Audit, metrics: Metrics): Audit {
  return {
    ...audit,
    record: (input) =>
      audit.record(input).catch((error: unknown) => {
        metrics.auditWriteFailed();
        throw error;
      }),
  };
}

/** A master key file others can read defeats the per-conversation uid of `--sandbox off`. */
function warnIfReadable(logger: Logger, file: string | undefined) {
  try {
    if (file !== undefined && (statSync(file).mode & 0o044) !== 0) logger.log("warn", "the master key file is readable by other users: chmod 600 it", { file });
  } catch {
    // A missing file is reported by loadMasterKey.
  }
}

/** The operator token file: 0600, so only the server's user can read it. */
function writeAdminToken(dataDir: string, token: string) {
  const path = join(dataDir, "admin.token");
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  if (existsSync(path)) chmodSync(path, 0o600);
}

/** The egress gateway: its CA in the data dir, trust files for sandboxes, audit through the trail. */
function createEgressGateway(config: ServerConfig, workDir: WorkDir, audit: Audit, logger: Logger): Promise<Gateway> {
  if (config.egressAllowPrivate) {
    // Unsafe by name: sandboxed commands may then reach loopback and private networks (Veil's own port included).
    logger.log("warn", "--egress-allow-private: the egress gateway will dial loopback and private addresses for sandboxed commands", {});
  }
  return createGateway({
    dataDir: config.dataDir,
    workDirServerDir: workDir.serverDir,
    ...(config.egressCaFile !== undefined ? { egressCaFile: config.egressCaFile } : {}),
    allowPrivate: config.egressAllowPrivate,
    log: logger,
    audit: (event) =>
      audit.record({
        tenant: event.tenant,
        tokenId: event.tokenId,
        agent: event.agent,
        conversationId: event.conversationId,
        action: event.action,
        outcome: event.outcome === "OK" ? "ok" : "denied",
        secretName: event.secretName,
        // Host and reason only: never a value, path, query or header.
        detail: [event.host, event.reason ?? "", event.requests !== undefined ? `requests=${event.requests}` : ""].filter(Boolean).join(" "),
      }),
  });
}
