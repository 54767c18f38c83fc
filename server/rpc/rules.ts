// The RPC rules: for every served method, its request schema, its audit action and whether it needs a token.
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { z } from "zod";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { AgentService } from "../../gen/veil/v1/agent_pb.js";
import { AuditService } from "../../gen/veil/v1/audit_pb.js";
import { BackupService } from "../../gen/veil/v1/backup_pb.js";
import { ConversationService } from "../../gen/veil/v1/conversation_pb.js";
import { KeyService } from "../../gen/veil/v1/keys_pb.js";
import { SecretService } from "../../gen/veil/v1/secret_pb.js";
import { SettingsService } from "../../gen/veil/v1/settings_pb.js";
import { TokenService } from "../../gen/veil/v1/token_pb.js";
import {
  createTokenRequest,
  deleteSecretRequest,
  endConversationRequest,
  getAgentAccessRequest,
  getSecretRequest,
  listAgentsRequest,
  listAuditEventsRequest,
  listSecretsRequest,
  listTokensRequest,
  revokeTokenRequest,
  runCommandRequest,
  sendInputRequest,
  setSecretsRequest,
  signalCommandRequest,
  startConversationRequest,
  updateSettingsRequest,
} from "./schemas.js";

/** What the interceptors need to know about one method; every field is stated, none defaulted. */
export interface MethodRule {
  /** The schema the request must satisfy (INVALID_ARGUMENT otherwise); null: nothing beyond its proto types. */
  readonly request: z.ZodType | null;
  /** The action the audit trail records the call as; null: not audited. */
  readonly audit: string | null;
  /** Callable without a token. */
  readonly public: boolean;
}

/** Rules by method descriptor (`SecretService.method.getSecret`), never by name string. */
export type RpcRules = ReadonlyMap<DescMethod, MethodRule>;

/** A method that needs a token. */
const rule = (request: z.ZodType | null, audit: string | null): MethodRule => ({ request, audit, public: false });
/** Health checks and schema reflection carry no data: no token, not audited. */
const PUBLIC: MethodRule = { request: null, audit: null, public: true };

/**
 * The table. Not audited: reading the trail itself and the key status (reads of no data).
 * The egress gateway's actions (`egress.use`, `egress.denied`) are not RPCs: see
 * EGRESS_ACTIONS in domain/audit.ts.
 */
export const RPC_RULES: RpcRules = new Map<DescMethod, MethodRule>([
  [SecretService.method.setSecrets, rule(setSecretsRequest, "secret.set")],
  [SecretService.method.listSecrets, rule(listSecretsRequest, "secret.list")],
  [SecretService.method.getSecret, rule(getSecretRequest, "secret.get")],
  [SecretService.method.deleteSecret, rule(deleteSecretRequest, "secret.delete")],
  [TokenService.method.createToken, rule(createTokenRequest, "token.create")],
  [TokenService.method.listTokens, rule(listTokensRequest, "token.list")],
  [TokenService.method.revokeToken, rule(revokeTokenRequest, "token.revoke")],
  [ConversationService.method.startConversation, rule(startConversationRequest, "conversation.start")],
  [ConversationService.method.runCommand, rule(runCommandRequest, "conversation.run")],
  [ConversationService.method.endConversation, rule(endConversationRequest, "conversation.end")],
  // That input was sent (and its size), never its bytes: input may hold anything the caller types.
  [ConversationService.method.sendInput, rule(sendInputRequest, "conversation.input")],
  [ConversationService.method.signalCommand, rule(signalCommandRequest, "conversation.signal")],
  [SettingsService.method.getSettings, rule(null, "settings.get")],
  [SettingsService.method.updateSettings, rule(updateSettingsRequest, "settings.update")],
  [AuditService.method.listAuditEvents, rule(listAuditEventsRequest, null)],
  [KeyService.method.rotateKeys, rule(null, "keys.rotate")],
  [KeyService.method.getKeyStatus, rule(null, null)],
  [KeyService.method.retireKeys, rule(null, "keys.retire")],
  [AgentService.method.listAgents, rule(listAgentsRequest, "agent.list")],
  [AgentService.method.getAgentAccess, rule(getAgentAccessRequest, "agent.access")],
  [BackupService.method.backup, rule(null, "backup.create")],
  [Health.method.check, PUBLIC],
  [Health.method.watch, PUBLIC],
  [reflectionV1.ServerReflection.method.serverReflectionInfo, PUBLIC],
  [reflectionV1alpha.ServerReflection.method.serverReflectionInfo, PUBLIC],
]);

const procedure = (method: DescMethod) => `${method.parent.typeName}/${method.name}`;

/** The rule of a called method. A method without one is refused (fail closed), before any token is read. */
export function ruleOf(rules: RpcRules, method: DescMethod): MethodRule {
  const found = rules.get(method);
  if (found === undefined) throw new ConnectError(`${procedure(method)}: this server has no rule for the method, so it refuses it`, Code.Unimplemented);
  return found;
}

/** Throws at startup, naming them, when the router serves methods the table has no rule for. */
export function assertEveryMethodRuled(rules: RpcRules, router: ConnectRouter): void {
  const missing = router.handlers.map((h) => h.method).filter((m) => !rules.has(m));
  if (missing.length > 0) {
    throw new Error(`RPC rules: no rule for ${missing.map(procedure).join(", ")}; every served method needs one in server/rpc/rules.ts`);
  }
}
