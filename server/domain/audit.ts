// The audit trail: one time-ordered event per action, stored beside the data, never carrying a value.
import { randomBytes } from "node:crypto";
import type { KvOp, KvStore } from "../store/kv.js";
import { fail, VeilError } from "../errors.js";
import { paginate } from "./page-token.js";

/**
 * Actions recorded outside any RPC, by the egress gateway: `egress.use` for each substitution
 * (secretName = the secret, `NAME.FIELD` for a field; detail = the host) and `egress.denied`
 * for each refusal (detail = the host and reason; never a value). Recorded with
 * `audit.record({ tenant, tokenId, agent, conversationId, action: EGRESS_ACTIONS.use, outcome: "ok", secretName, detail })`
 * from the binding's fields (`outcome: "denied"` for refusals). RPC actions are listed in rpc/audit.ts.
 */
export const EGRESS_ACTIONS = { use: "egress.use", denied: "egress.denied" } as const;

/** How an action ended. */
export type AuditOutcome = "ok" | "denied" | "not_found" | "failed";

/** One audited action. */
export interface AuditEvent {
  id: string;
  time: string;
  tenant: string;
  tokenId: string;
  agent: string;
  action: string;
  secretName: string;
  version: number;
  outcome: AuditOutcome;
  session: string;
  secretNames: string[];
  conversationId: string;
  detail: string;
  /** The calling client's self-declared name (`x-veil-client`), "" when none; a label, not an identity. */
  client: string;
}

/** What the caller knows of an event; the trail fills in id and time. */
export type AuditInput = Partial<Omit<AuditEvent, "id" | "time">> & Pick<AuditEvent, "tenant" | "tokenId" | "action" | "outcome">;

/** Filters of a listing. */
export interface AuditFilter {
  secretName: string;
  action: string;
  since?: Date;
  until?: Date;
  pageSize: number;
  pageToken: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const prefix = (tenant: string) => `aud\0${tenant}\0`;

/** The outcome a failure is recorded with. */
export function outcomeOf(error: unknown): AuditOutcome {
  if (error instanceof VeilError) {
    if (error.kind === "permission_denied" || error.kind === "unauthenticated") return "denied";
    if (error.kind === "not_found") return "not_found";
  }
  return "failed";
}

/**
 * Creates the trail over a store. `node` ends every event key: the server's id where several
 * servers share the store (ids are unique among live servers, so their keys never collide);
 * random per process otherwise.
 */
export function createAudit(store: KvStore, options: { node?: string } = {}) {
  let last = 0;
  let seq = 0;
  const node = options.node ?? randomBytes(3).toString("hex");

  /** Time-ordered, unique key suffix: ms since epoch, a sequence within the ms, the node. */
  function nextId(now: number): string {
    seq = now === last ? seq + 1 : 0;
    last = now;
    return `${now.toString(16).padStart(12, "0")}${seq.toString(16).padStart(6, "0")}${node}`;
  }

  /** Fields written out in one literal (not defaults spread under the input): every audited call builds one, and spreads of objects of changing shapes were the slow part. */
  function build(input: AuditInput): AuditEvent {
    const now = Date.now();
    return {
      id: nextId(now),
      time: new Date(now).toISOString(),
      agent: input.agent ?? "",
      secretName: input.secretName ?? "",
      version: input.version ?? 0,
      session: input.session ?? "",
      secretNames: input.secretNames ?? [],
      conversationId: input.conversationId ?? "",
      detail: input.detail ?? "",
      client: input.client ?? "",
      tenant: input.tenant,
      tokenId: input.tokenId,
      action: input.action,
      outcome: input.outcome,
    };
  }

  return {
    /** The ops that append an event inside another write's atomic batch. */
    ops(input: AuditInput): KvOp[] {
      const event = build(input);
      return [{ type: "put", key: prefix(event.tenant) + event.id, value: enc.encode(JSON.stringify(event)) }];
    },

    /** Appends an event durably on its own. Failing closed is the caller's job: it must not answer. */
    async record(input: AuditInput): Promise<void> {
      await store.write(this.ops(input));
    },

    /** Lists a tenant's events oldest first, filtered. */
    async list(tenant: string, filter: AuditFilter): Promise<{ events: AuditEvent[]; nextPageToken: string }> {
      const since = filter.since?.getTime();
      const until = filter.until?.getTime();
      if (since !== undefined && until !== undefined && since > until) throw fail.invalid("since: must not be after until");
      // Keys sort by time, so since/until bound the scan itself instead of filtering every event.
      const hex = (ms: number) => ms.toString(16).padStart(12, "0");
      const bounds = { ...(since !== undefined ? { from: hex(since) } : {}), ...(until !== undefined ? { to: hex(until + 1) } : {}) };
      const page = await paginate(store, prefix(tenant), { pageSize: filter.pageSize, pageToken: filter.pageToken, namePrefix: "", ...bounds }, (raw) => {
        const event = JSON.parse(dec.decode(raw)) as AuditEvent;
        if (filter.action !== "" && event.action !== filter.action) return undefined;
        if (filter.secretName !== "" && event.secretName !== filter.secretName && !event.secretNames.includes(filter.secretName)) return undefined;
        return event;
      });
      return { events: page.items, nextPageToken: page.nextPageToken };
    },
  };
}

/** The audit trail's operations. */
export type Audit = ReturnType<typeof createAudit>;
