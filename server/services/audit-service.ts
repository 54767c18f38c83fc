// AuditService: lists the tenant's audit trail to admins.
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Audit, AuditEvent as DomainEvent } from "../domain/audit.js";
import { authorize } from "../domain/policy.js";
import { principalOf } from "../rpc/context.js";
import { type AuditEvent, AuditEventSchema, type AuditService, Outcome } from "../../gen/veil/v1/audit_pb.js";

const OUTCOMES = { ok: Outcome.OK, denied: Outcome.DENIED, not_found: Outcome.NOT_FOUND, failed: Outcome.FAILED } as const;

/** A stored event as the AuditEvent message. */
function toMessage(event: DomainEvent): AuditEvent {
  return create(AuditEventSchema, {
    id: event.id,
    time: timestampFromDate(new Date(event.time)),
    tenant: event.tenant,
    tokenId: event.tokenId,
    agent: event.agent,
    action: event.action,
    secretName: event.secretName,
    version: BigInt(event.version),
    outcome: OUTCOMES[event.outcome],
    session: event.session,
    secretNames: event.secretNames,
    conversationId: event.conversationId,
    detail: event.detail,
    // Events stored before the field existed have none.
    client: event.client ?? "",
  });
}

/** Builds the AuditService handlers. */
export function createAuditService({ audit }: { audit: Audit }): ServiceImpl<typeof AuditService> {
  return {
    async listAuditEvents(req, ctx) {
      const principal = principalOf(ctx);
      authorize(principal, "audit.read");
      const page = await audit.list(principal.tenant, {
        secretName: req.secretName,
        action: req.action,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        ...(req.since !== undefined ? { since: timestampDate(req.since) } : {}),
        ...(req.until !== undefined ? { until: timestampDate(req.until) } : {}),
      });
      return { events: page.events.map(toMessage), nextPageToken: page.nextPageToken };
    },
  };
}
