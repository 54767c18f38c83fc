// ConversationService: resolves the secret snapshot, runs commands, streams masked events.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { ConversationEvent as DomainEvent } from "../domain/conversation.js";
import type { Conversations } from "../domain/conversations.js";
import { normalizeHostPattern } from "../domain/egress-binding.js";
import { fail, VeilError } from "../errors.js";
import type { InjectedSecret } from "../domain/injection.js";
import { authorize } from "../domain/policy.js";
import type { Principal } from "../domain/principal.js";
import type { References } from "../domain/references.js";
import type { Vault } from "../domain/vault.js";
import { auditTrail } from "../rpc/audit.js";
import { principalOf } from "../rpc/context.js";
import { type ConversationEventSchema, type ConversationService, Inject, NetworkMode, Stream } from "../../gen/veil/v1/conversation_pb.js";

/** Extra secrets a conversation may carry besides declared ones (sealed tokens, LLM settings). */
export type ExtraSecrets = (
  principal: Principal,
  request: { sealedSecrets: Record<string, string>; injectSettings: boolean },
  taken?: Set<string>,
) => Promise<InjectedSecret[]>;

/** What the service needs. */
export interface ConversationDeps {
  vault: Vault;
  /** Resolves declared and referenced secrets (env values, files) for a start. */
  references: References;
  conversations: Conversations;
  defaultTimeoutMs: number;
  outputLimitBytes: number;
  extraSecrets: ExtraSecrets;
}

type EventMessage = MessageInitShape<typeof ConversationEventSchema>;

function toMessage(event: DomainEvent): EventMessage {
  switch (event.type) {
    case "command_started":
      return { event: { case: "commandStarted", value: { commandId: event.commandId, command: event.command } } };
    case "output":
      return {
        event: { case: "output", value: { commandId: event.commandId, stream: event.stream === "stdout" ? Stream.STDOUT : Stream.STDERR, data: event.data } },
      };
    case "command_exited":
      return {
        event: {
          case: "commandExited",
          value: {
            commandId: event.commandId,
            exitCode: event.exitCode,
            durationMs: BigInt(event.durationMs),
            timedOut: event.timedOut,
            truncated: event.truncated,
            limit: event.limit ?? "",
          },
        },
      };
  }
}

/** The agent a call acts as: an agent token only as itself; an admin as whichever it names. */
function actingAgent(principal: Principal, requested: string): string {
  authorize(principal, "conversation.act_as", { agent: requested });
  return principal.role === "agent" ? principal.agent! : requested;
}

/** Every environment name must come from one secret only, or a command would see the wrong value. */
function checkCollisions(secrets: readonly InjectedSecret[], env: Record<string, string>) {
  const owner = new Map<string, string>();
  for (const s of secrets) {
    for (const key of Object.keys(s.env)) {
      const other = owner.get(key) ?? (key in env ? "env" : undefined);
      if (other !== undefined) throw fail.invalid(`secrets: ${s.name} sets ${key}, which ${other === "env" ? "env" : `secret ${other}`} also sets`);
      owner.set(key, s.name);
    }
  }
}

function shuttingDown() {
  return new VeilError("unavailable", "server shutting down: the command was stopped before it finished; run it again once the server is back");
}

/** Builds the ConversationService handlers. */
export function createConversationService(deps: ConversationDeps): ServiceImpl<typeof ConversationService> {
  /** Streams one command; a dropped client stream ends the conversation unless it is kept. */
  async function* stream(events: AsyncIterable<DomainEvent>) {
    for await (const event of events) {
      // The drain killed it: its exit code says nothing about the command, so the caller hears why instead.
      if (event.type === "command_exited" && deps.conversations.closing) throw shuttingDown();
      yield toMessage(event);
    }
    if (deps.conversations.closing) throw shuttingDown();
  }

  function endIfDropped(ctx: HandlerContext, conversation: { settings: { keepOnDisconnect: boolean }; end(): Promise<void> }) {
    if (ctx.signal.aborted && !conversation.settings.keepOnDisconnect) void conversation.end();
  }

  return {
    async *startConversation(req, ctx) {
      // Before any secret is resolved or decrypted: without a usable sandbox nothing would run anyway.
      deps.conversations.assertCanRun();
      const principal = principalOf(ctx);
      authorize(principal, "conversation.start");
      // Before any secret is opened or any shell spawned. NETWORK_MODE_EGRESS needs no grant:
      // it is the safe network (only the gateway, which swaps values for each secret's own hosts).
      if (req.network) authorize(principal, "network");
      const agent = actingAgent(principal, req.agent);
      // Grants are checked for the agent the conversation acts as, also when an admin starts it.
      const grantee: Principal = agent === "" ? principal : { ...principal, role: "agent", agent };
      // One set per conversation keeps every placeholder unique within it.
      const taken = new Set<string>();
      // Declared secrets, and those env values and files name: resolved, grant-checked, lookups fetched, rendered.
      const prepared = await deps.references(grantee, req, taken);
      const secrets = prepared.secrets;
      secrets.push(...(await deps.extraSecrets(principal, req, taken)));
      checkCollisions(secrets, prepared.env);

      const trail = auditTrail(ctx);
      const networkMode = req.networkMode === NetworkMode.EGRESS ? "egress" : "none";
      const placeholders = secrets.flatMap((s) => s.placeholders ?? []).sort();
      trail.note({
        agent,
        session: req.session,
        secretNames: [...req.secrets, ...prepared.referenced, ...Object.keys(req.sealedSecrets), ...(req.injectSettings ? ["LLM_API_KEY"] : [])],
        // Names only: which variables hold placeholders, and the network the sandbox gets.
        detail: [networkMode === "egress" ? "network_mode=egress" : "", placeholders.length > 0 ? `placeholders=${placeholders.join(",")}` : ""].filter(Boolean).join(" "),
      });
      const conversation = await deps.conversations.start({
        owner: { tenant: principal.tenant, agent },
        inject: req.inject === Inject.REFERENCED ? "referenced" : "declared",
        secrets,
        env: prepared.env,
        files: prepared.files,
        workingDir: req.workingDir,
        network: req.network,
        networkMode,
        egressAllow: req.egressAllow.map(normalizeHostPattern),
        tokenId: principal.tokenId,
        defaultTimeoutMs: req.timeoutMs || deps.defaultTimeoutMs,
        outputLimitBytes: deps.outputLimitBytes,
        keepOnDisconnect: req.keepOnDisconnect,
      });
      let announced = false;
      try {
        // On record before any command runs: if the trail cannot take it, nothing runs.
        trail.note({ conversationId: conversation.id });
        await trail.commit();
        announced = true;
        yield {
          event: {
            case: "started",
            value: {
              conversationId: conversation.id,
              secrets: secrets.map((s) => s.name).sort(),
              unmaskedSecrets: conversation.unmaskedNames.sort(),
              sandbox: conversation.sandbox,
              placeholders: conversation.placeholderNames,
            },
          },
        };
        for (const command of req.commands) yield* stream(conversation.run(command, { signal: ctx.signal }));
      } finally {
        endIfDropped(ctx, conversation);
        if (req.endWhenDone || !announced) await conversation.end();
      }
    },

    async *runCommand(req, ctx) {
      const principal = principalOf(ctx);
      const conversation = deps.conversations.find(principal, req.conversationId);
      await auditTrail(ctx).commit();
      try {
        yield* stream(conversation.run(req.command, { signal: ctx.signal, stdin: req.stdin, ...(req.timeoutMs > 0 ? { timeoutMs: req.timeoutMs } : {}) }));
      } finally {
        endIfDropped(ctx, conversation);
      }
    },

    async sendInput(req, ctx) {
      const conversation = deps.conversations.find(principalOf(ctx), req.conversationId);
      // That input was sent and how much, never what it was.
      auditTrail(ctx).note({ detail: `command=${req.commandId} bytes=${req.data.length}${req.eof ? " eof" : ""}` });
      conversation.sendInput(req.commandId, req.data, req.eof);
      return {};
    },

    async signalCommand(req, ctx) {
      const conversation = deps.conversations.find(principalOf(ctx), req.conversationId);
      auditTrail(ctx).note({ detail: `command=${req.commandId} signal=${req.signal}` });
      conversation.signal(req.commandId, req.signal as NodeJS.Signals);
      return {};
    },

    async endConversation(req, ctx) {
      const principal = principalOf(ctx);
      const conversation = deps.conversations.find(principal, req.conversationId);
      await conversation.end();
      return {};
    },
  };
}
