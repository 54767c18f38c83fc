// A secret's detail view: metadata, kept versions and Reveal, "Edit access", "Replace value" and a two-step "Delete".
import { useEffect, useRef, useState } from "preact/hooks";
import type { SecretMeta } from "../../gen/veil/v1/secret_pb.js";
import { type Api, errorText } from "../api.js";
import { href } from "../route.js";
import { Alert, ConfirmButton, formatTime, Status, useLoad } from "../ui.js";
import { accessText, kindText } from "./describe.js";
import { EditAccess, ReplaceValue } from "./edit-forms.js";
import { useKnownAgents } from "./known-agents.js";
import { Reveal } from "./reveal.js";

/** Metadata of one secret, from ListSecrets (a GetSecret would read, and audit, the value). */
async function findMeta(api: Api, session: string, name: string): Promise<SecretMeta | undefined> {
  const res = await api.secrets.listSecrets({ session, namePrefix: name, pageSize: 100 });
  return res.secrets.find((s) => s.name === name && s.session === session) ?? res.secrets.find((s) => s.name === name);
}

export function SecretDetail(props: { api: Api; session: string; name: string; onDeleted: (name: string) => void }) {
  const { api, session, name } = props;
  const loaded = useLoad(() => findMeta(api, session, name), [api, session, name]);
  const agents = useKnownAgents(api, session);
  const [mode, setMode] = useState<"view" | "access" | "value">("view");
  const [notice, setNotice] = useState<string>();
  const [error, setError] = useState<string>();
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => headingRef.current?.focus(), []);
  const meta = loaded.data;

  const saved = (message: string) => {
    setMode("view");
    setNotice(message);
    loaded.reload();
  };
  const remove = async () => {
    try {
      await api.secrets.deleteSecret({ session: meta!.session, name });
      props.onDeleted(name);
    } catch (e) {
      setError(`Could not delete: ${errorText(e)}`);
    }
  };

  return (
    <section aria-labelledby="detail-heading">
      <p class="crumbs">
        <a href={href("secrets")}>← All secrets</a>
      </p>
      <h1 id="detail-heading" class="mono" ref={headingRef} tabIndex={-1}>
        {name}
      </h1>
      {loaded.loading && !meta && <Status>Loading…</Status>}
      {loaded.error && <Alert>Could not load the secret: {loaded.error}</Alert>}
      {!loaded.loading && !loaded.error && !meta && <Alert>There is no secret named {name}{session ? ` in session ${session}` : ""}.</Alert>}
      {notice && <Status>{notice}</Status>}
      {error && <Alert>{error}</Alert>}
      {meta && (
        <>
          <MetaList meta={meta} />
          <div class="actions">
            {mode === "view" && (
              <>
                <button type="button" class="secondary" onClick={() => setMode("access")}>
                  Edit access
                </button>
                <button type="button" class="secondary" onClick={() => setMode("value")}>
                  Replace value
                </button>
              </>
            )}
            <button type="button" class="secondary" onClick={() => { setNotice(undefined); loaded.reload(); }}>
              Reload
            </button>
            <ConfirmButton label="Delete" confirmLabel={`Delete ${name}`} prompt={`Delete ${name} and every version of it, for good?`} onConfirm={remove} />
          </div>
          {mode === "access" && <EditAccess api={api} meta={meta} agents={agents} onSaved={saved} onCancel={() => setMode("view")} />}
          {mode === "value" && <ReplaceValue api={api} meta={meta} onSaved={saved} onCancel={() => setMode("view")} />}
          {mode === "view" && <Reveal api={api} meta={meta} />}
        </>
      )}
    </section>
  );
}

function MetaList({ meta }: { meta: SecretMeta }) {
  const rows: [string, string][] = [
    ["Description", meta.description || "—"],
    ["Kind", kindText(meta)],
    ["Version", String(meta.version)],
    ["Created", formatTime(meta.createdAt)],
    ["Updated", formatTime(meta.updatedAt)],
    ["Scope", meta.session ? `session ${meta.session}` : "tenant-wide"],
    ["Agent access", accessText(meta)],
    ["Agent readers", meta.agentReaders.join(", ") || "none"],
  ];
  if (meta.egressHosts.length > 0) rows.push(["Egress hosts", meta.egressHosts.join(", ")]);
  for (const [k, v] of Object.entries(meta.metadata)) rows.push([`Metadata: ${k}`, v]);
  return (
    <dl class="meta card">
      {rows.map(([k, v]) => (
        <div key={k} class="meta-row">
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}
