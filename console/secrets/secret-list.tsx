// The Secrets list: search by name prefix, session scope, paging over page tokens, and the table of metadata (never values).
import { useState } from "preact/hooks";
import type { Api } from "../api.js";
import { href } from "../route.js";
import { Alert, formatTime, Pager, Status, useLoad } from "../ui.js";
import { accessText, kindText } from "./describe.js";

const PAGE_SIZE = 50;

export function SecretList(props: { api: Api; session: string; onSession: (s: string) => void; onAdd: () => void; notice?: string | undefined }) {
  const { api, session } = props;
  const [prefix, setPrefix] = useState("");
  // Tokens of the pages seen so far: [0] is the first page (""), the last is the current one.
  const [pages, setPages] = useState<string[]>([""]);
  const pageToken = pages[pages.length - 1]!;
  const list = useLoad(() => api.secrets.listSecrets({ session, namePrefix: prefix, pageSize: PAGE_SIZE, pageToken }), [api, session, prefix, pageToken]);
  const secrets = list.data?.secrets ?? [];
  const first = (pages.length - 1) * PAGE_SIZE;
  return (
    <section aria-labelledby="secrets-heading">
      <div class="section-head">
        <div>
          <h1 id="secrets-heading">Secrets</h1>
          <p class="lead">Values stay encrypted; agents see names only. Choose a secret to change its access or value.</p>
        </div>
        <button type="button" class="primary" onClick={props.onAdd}>
          Add secret
        </button>
      </div>
      {props.notice && <Status>{props.notice}</Status>}
      <div class="toolbar">
        <div class="field inline">
          <label for="secret-search">Search by name prefix</label>
          <input
            id="secret-search"
            type="search"
            autocomplete="off"
            spellcheck={false}
            value={prefix}
            onInput={(e) => {
              setPrefix(e.currentTarget.value);
              setPages([""]);
            }}
          />
        </div>
        <div class="field inline">
          <label for="secret-session">Session scope</label>
          <input
            id="secret-session"
            type="text"
            placeholder="tenant-wide"
            autocomplete="off"
            spellcheck={false}
            value={session}
            onChange={(e) => {
              props.onSession(e.currentTarget.value.trim());
              setPages([""]);
            }}
          />
        </div>
      </div>
      {list.error && <Alert>Could not list the secrets: {list.error}</Alert>}
      {list.loading && <Status>Loading secrets…</Status>}
      {!list.loading && !list.error && secrets.length === 0 && (
        <p class="empty">{prefix ? `No secret name starts with “${prefix}”.` : "No secrets yet. Press “Add secret” to store the first one."}</p>
      )}
      {secrets.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Secrets{session ? ` in session ${session}` : ""}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Description</th>
                <th scope="col">Kind</th>
                <th scope="col" class="num">
                  Version
                </th>
                <th scope="col">Updated</th>
                <th scope="col">Agent access</th>
              </tr>
            </thead>
            <tbody>
              {secrets.map((s) => (
                <tr key={`${s.session}/${s.name}`}>
                  <td>
                    <a class="mono" href={href("secrets", s.name)}>
                      {s.name}
                    </a>
                  </td>
                  <td class="desc">{s.description}</td>
                  <td>{kindText(s)}</td>
                  <td class="num">{String(s.version)}</td>
                  <td class="nowrap">{formatTime(s.updatedAt)}</td>
                  <td>{accessText(s)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager pages={pages} setPages={setPages} nextPageToken={list.data?.nextPageToken} range={secrets.length > 0 ? `${first + 1}–${first + secrets.length}` : ""} />
    </section>
  );
}
