// Typed clients for every Veil service over any transport: shared by the Node and browser entries.
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { AgentService } from "../gen/veil/v1/agent_pb.js";
import { AuditService } from "../gen/veil/v1/audit_pb.js";
import { BackupService } from "../gen/veil/v1/backup_pb.js";
import { type ConversationEvent, ConversationService, type StartConversationRequestSchema } from "../gen/veil/v1/conversation_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import { type CommandResult, collect } from "./conversation.js";
import { KeyService } from "../gen/veil/v1/keys_pb.js";
import { SecretService } from "../gen/veil/v1/secret_pb.js";
import { SettingsService } from "../gen/veil/v1/settings_pb.js";
import { TokenService } from "../gen/veil/v1/token_pb.js";

export * from "../gen/veil/v1/agent_pb.js";
export * from "../gen/veil/v1/audit_pb.js";
export * from "../gen/veil/v1/backup_pb.js";
export * from "../gen/veil/v1/conversation_pb.js";
export * from "../gen/veil/v1/keys_pb.js";
export * from "../gen/veil/v1/secret_pb.js";
export * from "../gen/veil/v1/settings_pb.js";
export * from "../gen/veil/v1/token_pb.js";
export { collect, type CollectedConversation, type CommandResult } from "./conversation.js";

/** The wire protocols one Veil port speaks. */
export type VeilProtocol = "grpc" | "connect" | "grpc-web";

/** Typed clients for each Veil service, sharing one transport. */
export interface VeilClient {
  secrets: Client<typeof SecretService>;
  tokens: Client<typeof TokenService>;
  conversations: Client<typeof ConversationService>;
  settings: Client<typeof SettingsService>;
  audit: Client<typeof AuditService>;
  keys: Client<typeof KeyService>;
  agents: Client<typeof AgentService>;
  backup: Client<typeof BackupService>;
  transport: Transport;
  /** Starts a conversation: `started`, then each command's events, as an async iterable. */
  startConversation(request: MessageInitShape<typeof StartConversationRequestSchema>, options?: CallOptions): AsyncIterable<ConversationEvent>;
  /** Runs one more command in a live conversation; its events as an async iterable. */
  run(conversationId: string, command: string, options?: CallOptions & { timeoutMs?: number }): AsyncIterable<ConversationEvent>;
  /** Runs one command and resolves to its masked output and exit code. */
  exec(conversationId: string, command: string, options?: CallOptions & { timeoutMs?: number }): Promise<CommandResult>;
}

/** Adds `authorization: Bearer <token>` to every call. */
export function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/** Builds clients from a transport (for callers that made their own). */
export function clientsFor(transport: Transport): VeilClient {
  const conversations = createClient(ConversationService, transport);
  const run = (conversationId: string, command: string, options: CallOptions & { timeoutMs?: number } = {}) => {
    const { timeoutMs = 0, ...callOptions } = options;
    return conversations.runCommand({ conversationId, command, timeoutMs }, callOptions);
  };
  return {
    startConversation: (request, options) => conversations.startConversation(request, options),
    run,
    async exec(conversationId, command, options) {
      const result = (await collect(run(conversationId, command, options))).commands[0];
      if (result === undefined) throw new Error("the stream ended before the command exited");
      return result;
    },
    secrets: createClient(SecretService, transport),
    tokens: createClient(TokenService, transport),
    conversations,
    settings: createClient(SettingsService, transport),
    audit: createClient(AuditService, transport),
    keys: createClient(KeyService, transport),
    agents: createClient(AgentService, transport),
    backup: createClient(BackupService, transport),
    transport,
  };
}

