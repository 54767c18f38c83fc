// Audit interceptor: every audited call leaves one durable event per action, or it does not answer.
import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { type Audit, type AuditInput, outcomeOf } from "../domain/audit.js";
import { VeilError } from "../domain/errors.js";
import type { KvOp } from "../store/kv.js";
import { around } from "./around.js";
import { kPrincipal } from "./context.js";

/**
 * Procedure to audited action; calls not listed (health, reflection, audit listing itself) are
 * not audited. The egress gateway's actions (`egress.use`, `egress.denied`) are not RPCs: see
 * EGRESS_ACTIONS in domain/audit.ts.
 */
const ACTIONS: Record<string, string> = {
  "veil.v1.SecretService/SetSecrets": "secret.set",
  "veil.v1.SecretService/ListSecrets": "secret.list",
  "veil.v1.SecretService/GetSecret": "secret.get",
  "veil.v1.SecretService/DeleteSecret": "secret.delete",
  "veil.v1.TokenService/CreateToken": "token.create",
  "veil.v1.TokenService/ListTokens": "token.list",
  "veil.v1.TokenService/RevokeToken": "token.revoke",
  "veil.v1.ConversationService/StartConversation": "conversation.start",
  "veil.v1.ConversationService/RunCommand": "conversation.run",
  "veil.v1.ConversationService/EndConversation": "conversation.end",
  // That input was sent (and its size), never its bytes: input may hold anything the caller types.
  "veil.v1.ConversationService/SendInput": "conversation.input",
  "veil.v1.ConversationService/SignalCommand": "conversation.signal",
  "veil.v1.SettingsService/GetSettings": "settings.get",
  "veil.v1.SettingsService/UpdateSettings": "settings.update",
  "veil.v1.KeyService/RotateKeys": "keys.rotate",
  "veil.v1.KeyService/RetireKeys": "keys.retire",
  "veil.v1.AgentService/ListAgents": "agent.list",
  "veil.v1.AgentService/GetAgentAccess": "agent.access",
  "veil.v1.BackupService/Backup": "backup.create",
};

/** The request header a client names itself in (`veil mcp` sends `mcp:<clientInfo.name>`). */
export const CLIENT_HEADER = "x-veil-client";

/** A client's self-declared name as the trail keeps it: printable ASCII without spaces at the ends, at most 80 characters. */
export function clientLabel(raw: string | null): string {
  if (raw === null) return "";
  return raw.replace(/[^\x21-\x7e ]/g, "").trim().slice(0, 80);
}

type Details = Omit<Partial<AuditInput>, "tenant" | "tokenId" | "action" | "outcome">;

/** What a handler tells the trail about its call. */
export interface AuditTrail {
  /** Adds details (secret name, version, conversation id) to the call's event. */
  note(details: Details): void;
  /** Ops writing this call's events inside the handler's own atomic write: recorded if and only if the write lands. */
  batch(events?: Details[]): KvOp[];
  /** Records the event now (before a stream starts its work): if this fails, the work must not start. */
  commit(): Promise<void>;
}

const kAuditTrail = createContextKey<AuditTrail | undefined>(undefined, { description: "veil audit trail" });

/** The trail of the current call (a no-op trail for calls that are not audited). */
export function auditTrail(ctx: HandlerContext): AuditTrail {
  return ctx.values.get(kAuditTrail) ?? { note() {}, batch: () => [], commit: async () => {} };
}

function auditUnavailable(cause: unknown): ConnectError {
  // The store's own reason ("store: no space left on device") is safe to pass on and says what to fix.
  const reason = cause instanceof VeilError ? ` (${cause.message.split(";")[0]})` : "";
  return new ConnectError(`audit trail unavailable${reason}: the action was not answered`, Code.Unavailable, undefined, undefined, cause);
}

/** Records the audit event of each audited call when it ends (for streams: when they fail or when the handler commits). */
export function createAuditInterceptor(audit: Audit): Interceptor {
  return (next) => async (req) => {
    const action = ACTIONS[`${req.service.typeName}/${req.method.name}`];
    const principal = req.contextValues.get(kPrincipal);
    if (action === undefined || principal === undefined) return next(req);

    const message = (req.stream ? undefined : req.message) as { name?: unknown; session?: unknown; conversationId?: unknown } | undefined;
    let details: Details = {
      agent: principal.agent ?? "",
      client: clientLabel(req.header.get(CLIENT_HEADER)),
      ...(typeof message?.name === "string" ? { secretName: message.name } : {}),
      ...(typeof message?.session === "string" ? { session: message.session } : {}),
      ...(typeof message?.conversationId === "string" ? { conversationId: message.conversationId } : {}),
    };
    let recorded = false;
    const base = { tenant: principal.tenant, tokenId: principal.tokenId, action };
    const trail: AuditTrail = {
      note(more) {
        details = { ...details, ...more };
      },
      batch(events = [{}]) {
        recorded = true;
        return events.flatMap((e) => audit.ops({ ...base, ...details, ...e, outcome: "ok" }));
      },
      async commit() {
        recorded = true;
        await audit.record({ ...base, ...details, outcome: "ok" }).catch((cause: unknown) => {
          throw auditUnavailable(cause);
        });
      },
    };
    req.contextValues.set(kAuditTrail, trail);

    return around(next, req, {
      async failed(error) {
        if (recorded) return;
        recorded = true;
        const detail = error instanceof ConnectError ? Code[error.code] : ((error as { kind?: string }).kind ?? "error");
        await audit.record({ ...base, ...details, outcome: outcomeOf(error), detail }).catch((cause: unknown) => {
          throw auditUnavailable(cause);
        });
      },
      // A value leaves, or a stream completes, only once the call is on record.
      async succeeded() {
        if (!recorded) await trail.commit();
      },
    });
  };
}
