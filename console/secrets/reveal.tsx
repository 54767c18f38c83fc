// "Reveal": the value is fetched (GetSecret) only when pressed and lives only in this component's state, so leaving the view forgets it.
import { useEffect, useId, useState } from "preact/hooks";
import type { SecretMeta } from "../../gen/veil/v1/secret_pb.js";
import { type Api, errorText } from "../api.js";
import { Alert, Status } from "../ui.js";

type Revealed = { version: bigint; text?: string | undefined; fields: Record<string, string> };

export function Reveal({ api, meta }: { api: Api; meta: SecretMeta }) {
  const [version, setVersion] = useState(meta.version);
  const [shown, setShown] = useState<Revealed>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const selectId = useId();
  // Switching to another browser tab hides it too: a value should not sit on an unattended screen.
  useEffect(() => {
    const onHide = () => document.visibilityState === "hidden" && setShown(undefined);
    document.addEventListener("visibilitychange", onHide);
    return () => document.removeEventListener("visibilitychange", onHide);
  }, []);
  useEffect(() => {
    setShown(undefined);
    setVersion(meta.version);
  }, [meta.name, meta.version]);
  const versions: bigint[] = [];
  for (let v = meta.version; v > 0n && v > meta.version - 10n; v--) versions.push(v);

  const reveal = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const res = await api.secrets.getSecret({ session: meta.session, name: meta.name, version });
      setShown({ version, text: res.text, fields: { ...res.fields } });
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card" aria-labelledby={`${selectId}-h`}>
      <h2 id={`${selectId}-h`}>Value</h2>
      <p class="hint">Kept versions: {versions.map(String).join(", ")} (the latest and up to 9 before it). Revealing a value is recorded in the audit trail.</p>
      <div class="row">
        <div class="field inline">
          <label for={selectId}>Version</label>
          <select id={selectId} value={String(version)} onChange={(e) => setVersion(BigInt(e.currentTarget.value))}>
            {versions.map((v) => (
              <option key={String(v)} value={String(v)}>
                {v === meta.version ? `${v} (latest)` : String(v)}
              </option>
            ))}
          </select>
        </div>
        {shown ? (
          <button type="button" class="secondary" onClick={() => setShown(undefined)}>
            Hide
          </button>
        ) : (
          <button type="button" class="secondary" disabled={busy} onClick={reveal}>
            Reveal
          </button>
        )}
      </div>
      {busy && <Status>Fetching the value…</Status>}
      {error && <Alert>Could not read the value: {error}</Alert>}
      {shown && <RevealedValue shown={shown} />}
    </section>
  );
}

function RevealedValue({ shown }: { shown: Revealed }) {
  if (shown.text !== undefined) {
    return (
      <figure class="revealed">
        <figcaption>Version {String(shown.version)}</figcaption>
        <pre class="value-text">{shown.text}</pre>
      </figure>
    );
  }
  return (
    <table class="revealed">
      <caption>Version {String(shown.version)}</caption>
      <thead>
        <tr>
          <th scope="col">Key</th>
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        {Object.entries(shown.fields).map(([k, v]) => (
          <tr key={k}>
            <td class="mono">{k}</td>
            <td>
              <pre class="value-text">{v}</pre>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
