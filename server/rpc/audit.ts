// Audit interceptor: every audited call leaves one durable event per action, or it does not answer.
import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { type Audit, type AuditInput, outcomeOf } from "../domain/audit.js";
import { VeilError } from "../errors.js";
import type { KvOp } from "../store/kv.js";
import { around } from "./around.js";
import { kPrincipal } from "./context.js";
import { RPC_RULES, type RpcRules, ruleOf } from "./rules.js";

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
  /** Adds a word to the detail of every event of this call, whatever else notes it (how the call arrived: forwarded_by=S). */
  tag(word: string): void;
  /** Ops writing this call's events inside the handler's own atomic write: recorded if and only if the write lands. */
  batch(events?: Details[]): KvOp[];
  /** Records the event now (before a stream starts its work): if this fails, the work must not start. */
  commit(): Promise<void>;
}

const kAuditTrail = createContextKey<AuditTrail | undefined>(undefined, { description: "veil audit trail" });

/** The trail of the current call (a no-op trail for calls that are not audited). */
export function auditTrail(ctx: HandlerContext): AuditTrail {
  return ctx.values.get(kAuditTrail) ?? { note() {}, tag() {}, batch: () => [], commit: async () => {} };
}

function auditUnavailable(cause: unknown): ConnectError {
  // The store's own reason ("store: no space left on device") is safe to pass on and says what to fix.
  const reason = cause instanceof VeilError ? ` (${cause.message.split(";")[0]})` : "";
  return new ConnectError(`audit trail unavailable${reason}: the action was not answered`, Code.Unavailable, undefined, undefined, cause);
}

/**
 * Records the audit event of each call whose rule names an action, when it ends (for streams:
 * when they fail or when the handler commits).
 */
export function createAuditInterceptor(audit: Audit, rules: RpcRules = RPC_RULES): Interceptor {
  return (next) => async (req) => {
    const action = ruleOf(rules, req.method).audit;
    const principal = req.contextValues.get(kPrincipal);
    if (action === null || principal === undefined) return next(req);

    const message = (req.stream ? undefined : req.message) as { name?: unknown; session?: unknown; conversationId?: unknown } | undefined;
    // One object per call, added to in place: the trail's events are built from it as the call ends.
    const details: Details = { agent: principal.agent ?? "", client: clientLabel(req.header.get(CLIENT_HEADER)) };
    if (typeof message?.name === "string") details.secretName = message.name;
    if (typeof message?.session === "string") details.session = message.session;
    if (typeof message?.conversationId === "string") details.conversationId = message.conversationId;
    let recorded = false;
    const tags: string[] = [];
    /** One event: the call's details, then the event's own, with the call's tags after its detail. */
    const event = (own: Details, outcome: AuditInput["outcome"]): AuditInput => {
      const merged: AuditInput = Object.assign({}, details, own, { tenant: principal.tenant, tokenId: principal.tokenId, action, outcome });
      if (tags.length > 0) merged.detail = [merged.detail ?? "", ...tags].join(" ").trim();
      return merged;
    };
    const trail: AuditTrail = {
      note(more) {
        Object.assign(details, more);
      },
      tag(word) {
        tags.push(word);
      },
      batch(events = [{}]) {
        recorded = true;
        return events.flatMap((e) => audit.ops(event(e, "ok")));
      },
      async commit() {
        recorded = true;
        await audit.record(event({}, "ok")).catch((cause: unknown) => {
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
        await audit.record(event({ detail }, outcomeOf(error))).catch((cause: unknown) => {
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
