// The Audit tab: the trail of reads, writes, denials and token changes, filtered by secret, action and since, paged.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useState } from "preact/hooks";
import { Outcome } from "../gen/veil/v1/audit_pb.js";
import type { Api } from "./api.js";
import { Alert, formatTime, Pager, Status, TextField, useLoad } from "./ui.js";

const ACTIONS = ["secret.set", "secret.get", "secret.list", "secret.delete", "conversation.start", "conversation.run", "conversation.end", "token.create", "token.list", "token.revoke", "settings.get", "settings.update", "egress.use", "egress.denied", "keys.rotate"];

interface Filters {
  secret: string;
  action: string;
  since: string;
}

export function AuditTab({ api }: { api: Api }) {
  const [draft, setDraft] = useState<Filters>({ secret: "", action: "", since: "" });
  const [filters, setFilters] = useState<Filters>(draft);
  const [pages, setPages] = useState<string[]>([""]);
  const pageToken = pages[pages.length - 1]!;
  const since = filters.since ? new Date(filters.since) : undefined;
  const list = useLoad(
    () =>
      api.audit.listAuditEvents({
        secretName: filters.secret,
        action: filters.action,
        pageSize: 50,
        pageToken,
        ...(since && !Number.isNaN(since.getTime()) ? { since: timestampFromDate(since) } : {}),
      }),
    [api, filters, pageToken],
  );
  const apply = (e: Event) => {
    e.preventDefault();
    setFilters({ ...draft, secret: draft.secret.trim(), action: draft.action.trim() });
    setPages([""]);
  };
  const events = list.data?.events ?? [];
  return (
    <section aria-labelledby="audit-heading">
      <h1 id="audit-heading">Audit</h1>
      <p class="lead">Every read, write, delete, denial, conversation start and token change. Never a value.</p>
      <form class="toolbar" onSubmit={apply} noValidate aria-label="Filters">
        <TextField class="inline" label="Secret" value={draft.secret} onInput={(secret) => setDraft({ ...draft, secret })} autocomplete="off" spellcheck={false} />
        <TextField class="inline" label="Action" value={draft.action} onInput={(action) => setDraft({ ...draft, action })} list="audit-actions" autocomplete="off" spellcheck={false} />
        <datalist id="audit-actions">
          {ACTIONS.map((a) => (
            <option key={a} value={a} />
          ))}
        </datalist>
        <div class="field inline">
          <label for="audit-since">Since</label>
          <input id="audit-since" type="datetime-local" value={draft.since} onInput={(e) => setDraft({ ...draft, since: e.currentTarget.value })} />
        </div>
        <button type="submit" class="secondary">
          Apply filters
        </button>
      </form>
      {list.error && <Alert>Could not load the audit trail: {list.error}</Alert>}
      {list.loading && <Status>Loading events…</Status>}
      {!list.loading && !list.error && events.length === 0 && <p class="empty">No events match.</p>}
      {events.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Audit events</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Action</th>
                <th scope="col">Secret</th>
                <th scope="col" class="num">Version</th>
                <th scope="col">Agent</th>
                <th scope="col">Token</th>
                <th scope="col">Outcome</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e, i) => (
                <tr key={e.id || i}>
                  <td class="nowrap">{formatTime(e.time)}</td>
                  <td class="mono nowrap">{e.action}</td>
                  <td class="mono">{e.secretName || e.secretNames.join(", ")}</td>
                  <td class="num">{e.version ? String(e.version) : ""}</td>
                  <td class="mono">{e.agent}</td>
                  <td class="mono nowrap">{e.tokenId}</td>
                  <td>
                    <span class={`badge outcome-${Outcome[e.outcome]?.toLowerCase()}`}>{(Outcome[e.outcome] ?? "").toLowerCase().replace("_", " ")}</span>
                  </td>
                  <td class="desc">{e.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager pages={pages} setPages={setPages} nextPageToken={list.data?.nextPageToken} />
    </section>
  );
}
