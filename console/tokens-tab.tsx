// The Tokens tab: create an agent token (shown once, with Copy), list the tenant's tokens, and revoke with a confirmation.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { useState } from "preact/hooks";
import { Role, type TokenInfo } from "../gen/veil/v1/token_pb.js";
import { type Api, errorText } from "./api.js";
import { formErrors } from "./form-errors.js";
import { Alert, ConfirmButton, formatTime, Pager, Status, TextField, useLoad } from "./ui.js";

const TTLS: readonly [string, number][] = [
  ["1 hour", 3600],
  ["1 day", 86400],
  ["7 days", 7 * 86400],
  ["30 days", 30 * 86400],
  ["90 days", 90 * 86400],
  ["1 year", 365 * 86400],
  ["No expiry", 0],
];

export function TokensTab({ api }: { api: Api }) {
  const [pages, setPages] = useState<string[]>([""]);
  const pageToken = pages[pages.length - 1]!;
  const list = useLoad(() => api.tokens.listTokens({ pageSize: 50, pageToken }), [api, pageToken]);
  const [notice, setNotice] = useState<string>();
  const [error, setError] = useState<string>();
  const revoke = async (t: TokenInfo) => {
    setError(undefined);
    try {
      await api.tokens.revokeToken({ tokenId: t.tokenId });
      setNotice(`Token ${t.tokenId} revoked.`);
      list.reload();
    } catch (e) {
      setError(`Could not revoke ${t.tokenId}: ${errorText(e)}`);
    }
  };
  return (
    <section aria-labelledby="tokens-heading">
      <h1 id="tokens-heading">Tokens</h1>
      <p class="lead">Agent tokens let an agent start conversations with the secrets granted to it.</p>
      <CreateToken api={api} onCreated={() => list.reload()} />
      <h2>Tokens of this tenant</h2>
      {notice && <Status>{notice}</Status>}
      {error && <Alert>{error}</Alert>}
      {list.error && <Alert>Could not list the tokens: {list.error}</Alert>}
      {list.loading && <Status>Loading tokens…</Status>}
      {list.data && (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Tokens</caption>
            <thead>
              <tr>
                <th scope="col">ID</th>
                <th scope="col">Role</th>
                <th scope="col">Agent</th>
                <th scope="col">Description</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.tokens.map((t) => (
                <tr key={t.tokenId}>
                  <td class="mono nowrap">{t.tokenId}</td>
                  <td>{t.operator ? "operator" : t.role === Role.AGENT ? "agent" : "admin"}</td>
                  <td class="mono">{t.agent}</td>
                  <td class="desc">{t.description}</td>
                  <td class="nowrap">{formatTime(t.createdAt)}</td>
                  <td class="nowrap">{t.expiresAt ? formatTime(t.expiresAt) : "never"}</td>
                  <td>{tokenStatus(t)}</td>
                  <td class="nowrap">
                    {tokenStatus(t) === "active" && <ConfirmButton small label="Revoke" confirmLabel={`Revoke ${t.tokenId}`} prompt="Revoke for good?" onConfirm={() => revoke(t)} />}
                  </td>
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

function tokenStatus(t: TokenInfo): string {
  if (t.revoked) return "revoked";
  if (t.expiresAt && timestampDate(t.expiresAt).getTime() <= Date.now()) return "expired";
  return "active";
}

function CreateToken({ api, onCreated }: { api: Api; onCreated: () => void }) {
  const [agent, setAgent] = useState("");
  const [ttl, setTtl] = useState(30 * 86400);
  const [description, setDescription] = useState("");
  const [allowNetwork, setAllowNetwork] = useState(false);
  const [created, setCreated] = useState<{ token: string; id: string; agent: string }>();
  const [errors, setErrors] = useState<ReturnType<typeof formErrors>>({ fields: {} });
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErrors({ fields: {} });
    try {
      const res = await api.tokens.createToken({ role: Role.AGENT, agent: agent.trim(), ttlSeconds: BigInt(ttl), description, allowNetwork });
      setCreated({ token: res.token, id: res.tokenId, agent: agent.trim() });
      setAgent("");
      setDescription("");
      setAllowNetwork(false);
      onCreated();
    } catch (error) {
      setErrors(formErrors(error, (path) => (["agent", "description"].includes(path) ? path : undefined), /^$/));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card form" onSubmit={submit} noValidate aria-labelledby="create-token-heading">
      <h2 id="create-token-heading">Create an agent token</h2>
      <div class="grid">
        <TextField label="Agent" value={agent} onInput={setAgent} hint="The agent's name, e.g. support-bot." error={errors.fields.agent} autocomplete="off" spellcheck={false} />
        <div class="field">
          <label for="token-ttl">Expires after</label>
          <select id="token-ttl" value={String(ttl)} onChange={(e) => setTtl(Number(e.currentTarget.value))}>
            {TTLS.map(([label, seconds]) => (
              <option key={seconds} value={String(seconds)}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <TextField label="Description" value={description} onInput={setDescription} hint="Optional." error={errors.fields.description} autocomplete="off" />
      </div>
      <label class="check">
        <input type="checkbox" checked={allowNetwork} onChange={(e) => setAllowNetwork(e.currentTarget.checked)} />
        <span>Allow network (unrestricted network for this agent's commands)</span>
      </label>
      {errors.general && <Alert>{errors.general}</Alert>}
      {busy && <Status>Creating…</Status>}
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          Create token
        </button>
      </div>
      {created && <NewToken created={created} onDone={() => setCreated(undefined)} />}
    </form>
  );
}

function NewToken({ created, onDone }: { created: { token: string; id: string; agent: string }; onDone: () => void }) {
  const [copied, setCopied] = useState<string>();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.token);
      setCopied("Copied to the clipboard.");
    } catch {
      setCopied("Could not copy: select the token and copy it by hand.");
    }
  };
  return (
    <div class="new-token">
      <label id="new-token-label" for="new-token">
        New token for {created.agent} ({created.id})
      </label>
      <div class="row">
        <input id="new-token" class="mono grow" type="text" readOnly value={created.token} aria-describedby="new-token-note" onFocus={(e) => e.currentTarget.select()} />
        <button type="button" class="secondary" onClick={copy}>
          Copy
        </button>
        <button type="button" class="secondary" onClick={onDone}>
          Done
        </button>
      </div>
      <p class="note" id="new-token-note">
        Copy it now: it will not be shown again.
      </p>
      {copied && <Status>{copied}</Status>}
    </div>
  );
}
