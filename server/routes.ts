// Every service of the server, registered on one router.
import type { ConnectRouter } from "@connectrpc/connect";
import type { AgentDirectory } from "./domain/agents.js";
import type { Audit } from "./domain/audit.js";
import type { Lookups } from "./domain/lookups.js";
import type { Rotation } from "./crypto/rotation.js";
import type { Sealer } from "./crypto/sealed-tokens.js";
import type { Settings } from "./domain/settings.js";
import type { Tokens } from "./domain/tokens.js";
import type { Vault } from "./domain/vault.js";
import { assertEveryMethodRuled, type RpcRules } from "./rpc/rules.js";
import type { KvStore } from "./store/kv.js";
import { type ConversationDeps, createConversationService } from "./services/conversation-service.js";
import { createAgentService } from "./services/agent-service.js";
import { createAuditService } from "./services/audit-service.js";
import { createBackupService } from "./services/backup-service.js";
import { createHealthService } from "./services/health.js";
import { createKeyService } from "./services/key-service.js";
import { createSettingsService } from "./services/settings-service.js";
import { registerReflection } from "./services/reflection.js";
import { createSecretService } from "./services/secret-service.js";
import { createTokenService } from "./services/token-service.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { AgentService, file_veil_v1_agent } from "../gen/veil/v1/agent_pb.js";
import { AuditService, file_veil_v1_audit } from "../gen/veil/v1/audit_pb.js";
import { BackupService, file_veil_v1_backup } from "../gen/veil/v1/backup_pb.js";
import { ConversationService, file_veil_v1_conversation } from "../gen/veil/v1/conversation_pb.js";
import { file_veil_v1_keys, KeyService } from "../gen/veil/v1/keys_pb.js";
import { file_veil_v1_secret, SecretService } from "../gen/veil/v1/secret_pb.js";
import { file_veil_v1_settings, SettingsService } from "../gen/veil/v1/settings_pb.js";
import { file_veil_v1_token, TokenService } from "../gen/veil/v1/token_pb.js";
import { file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.js";

/** What the routes are built from. */
export interface RouteDeps extends ConversationDeps {
  /** The interceptors' rules: building the routes throws if a served method has none. */
  rules: RpcRules;
  vault: Vault;
  tokens: Tokens;
  settings: Settings;
  sealer: Sealer;
  audit: Audit;
  agents: AgentDirectory;
  rotation: Rotation;
  lookups: Lookups;
  /** Read whole, as one snapshot, by backups. */
  store: KvStore;
  isServing: () => boolean;
  /** Routes conversation calls to the server that runs the conversation (several servers on one store). */
  forwarding?: (service: ReturnType<typeof createConversationService>) => ReturnType<typeof createConversationService>;
}

/** Builds the route table; a served method without an RPC rule fails the start, naming it. */
export function createRoutes(deps: RouteDeps) {
  const services = [SecretService, TokenService, ConversationService, SettingsService, AuditService, KeyService, AgentService, BackupService];
  return (router: ConnectRouter) => {
    router.service(SecretService, createSecretService(deps));
    router.service(TokenService, createTokenService(deps));
    router.service(ConversationService, (deps.forwarding ?? ((service) => service))(createConversationService(deps)));
    router.service(SettingsService, createSettingsService(deps));
    router.service(AuditService, createAuditService(deps));
    router.service(KeyService, createKeyService(deps));
    router.service(AgentService, createAgentService(deps));
    router.service(BackupService, createBackupService(deps));
    router.service(Health, createHealthService(deps.isServing, { services: services.map((s) => s.typeName) }));
    registerReflection(router, [
      file_veil_v1_secret,
      file_veil_v1_token,
      file_veil_v1_conversation,
      file_veil_v1_settings,
      file_veil_v1_audit,
      file_veil_v1_keys,
      file_veil_v1_agent,
      file_veil_v1_backup,
      file_grpc_health_v1_health,
    ]);
    assertEveryMethodRuled(deps.rules, router);
  };
}
