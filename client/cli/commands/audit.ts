// `veil audit`: lists the tenant's audit events, oldest first.
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, Outcome } from "../../index.js";
import { type Command, parse, parseDuration } from "../command.js";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from "../connection.js";
import { EXIT, table, UsageError } from "../io.js";

function eventJson(e: AuditEvent) {
  return {
    time: e.time ? timestampDate(e.time).toISOString() : "",
    action: e.action,
    outcome: Outcome[e.outcome].toLowerCase(),
    secretName: e.secretName,
    version: Number(e.version),
    session: e.session,
    secretNames: e.secretNames,
    conversationId: e.conversationId,
    tokenId: e.tokenId,
    agent: e.agent,
    detail: e.detail,
    client: e.client,
  };
}

/** A time flag: an ISO date, or a duration meaning "that long ago". */
function parseTime(text: string, flag: string): Date {
  if (/^\d+[smhd]?$/.test(text)) return new Date(Date.now() - parseDuration(text, flag) * 1000);
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new UsageError(`${flag}: expected an ISO time or a duration such as 1h`);
  return date;
}

export const auditCommand: Command = {
  name: "audit",
  summary: "list audit events (admin)",
  help: `Usage: veil audit [options]

Lists who read, wrote, deleted or was denied which secret, conversation starts and
token changes: oldest first. Never a value.

Options:
  --secret NAME     only events about this secret
  --action A        only this action (secret.get, secret.set, secret.delete,
                    conversation.start, token.create, token.revoke, ...)
  --since T         ISO time, or a duration ago such as 1h or 7d
  --until T         ISO time, or a duration ago
  --limit N         at most N events (default: all)
  --json            one JSON object per line
${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        ...CONNECTION_OPTIONS,
        secret: { type: "string" },
        action: { type: "string" },
        since: { type: "string" },
        until: { type: "string" },
        limit: { type: "string" },
        json: { type: "boolean" },
      },
      false,
    );
    const limit = values.limit === undefined ? Number.POSITIVE_INFINITY : Number(values.limit);
    if (!(limit > 0)) throw new UsageError("--limit: must be a positive whole number");
    const client = await connect(values);
    const events: AuditEvent[] = [];
    let pageToken = "";
    do {
      const page = await client.audit.listAuditEvents({
        secretName: values.secret ?? "",
        action: values.action ?? "",
        pageSize: 1000,
        pageToken,
        ...(values.since !== undefined ? { since: timestampFromDate(parseTime(values.since, "--since")) } : {}),
        ...(values.until !== undefined ? { until: timestampFromDate(parseTime(values.until, "--until")) } : {}),
      });
      events.push(...page.events);
      pageToken = page.nextPageToken;
    } while (pageToken !== "" && events.length < limit);
    const shown = events.slice(0, limit);
    if (values.json) for (const e of shown) process.stdout.write(`${JSON.stringify(eventJson(e))}\n`);
    else if (shown.length > 0) {
      const rows = shown.map((e) => {
        const j = eventJson(e);
        const subject = j.secretName ? `${j.secretName}${j.version ? ` v${j.version}` : ""}` : j.secretNames.join(",") || j.detail;
        return [j.time, j.action, j.outcome, subject, `${j.agent || "-"}${j.client ? ` (${j.client})` : ""}`, j.tokenId];
      });
      process.stdout.write(`${table([["TIME", "ACTION", "OUTCOME", "SUBJECT", "AGENT", "TOKEN"], ...rows])}\n`);
    }
    return EXIT.ok;
  },
};
