// The detail view's two edits: "Edit access" (SetSecrets without a value: the vault keeps it) and "Replace value" (same metadata, new value).
import { Code } from "@connectrpc/connect";
import { useState } from "preact/hooks";
import type { SecretMeta } from "../../gen/veil/v1/secret_pb.js";
import { type Api, errorCode } from "../api.js";
import { type FormErrors, formErrors, secretFieldOf } from "../form-errors.js";
import { Alert, Status } from "../ui.js";
import { AgentAccess, accessDraft, accessOf } from "./agent-access.js";
import { keptMeta } from "./describe.js";
import { emptyValue, ValueEditor, valueInput } from "./value-editor.js";

export const CHANGED_MEANWHILE = "This secret changed meanwhile: reload it and try again.";

/** Sends one SetSecrets with check-and-set on the version shown; ABORTED becomes the "changed meanwhile" message. */
async function save(api: Api, meta: SecretMeta, patch: object, setErrors: (e: FormErrors) => void): Promise<boolean> {
  try {
    await api.secrets.setSecrets({ session: meta.session, secrets: [{ ...keptMeta(meta), ...patch, expectedVersion: meta.version }] });
    return true;
  } catch (error) {
    setErrors(errorCode(error) === Code.Aborted ? { fields: {}, general: CHANGED_MEANWHILE } : formErrors(error, secretFieldOf));
    return false;
  }
}

/** The busy/errors state of one edit form and its submit handler: saves `patch()` and reports `message()` when it landed. */
function useSave(api: Api, meta: SecretMeta, onSaved: (message: string) => void) {
  const [errors, setErrors] = useState<FormErrors>({ fields: {} });
  const [busy, setBusy] = useState(false);
  const submitWith = (patch: () => object, message: string) => async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErrors({ fields: {} });
    const ok = await save(api, meta, patch(), setErrors);
    setBusy(false);
    if (ok) onSaved(message);
  };
  return { errors, busy, submitWith };
}

interface EditProps {
  api: Api;
  meta: SecretMeta;
  onSaved: (message: string) => void;
  onCancel: () => void;
}

export function EditAccess({ api, meta, agents, onSaved, onCancel }: EditProps & { agents: readonly string[] }) {
  const [draft, setDraft] = useState(() => accessDraft(meta.allowedAgents, meta.agentReaders));
  const { errors, busy, submitWith } = useSave(api, meta, onSaved);
  // No text or fields: the vault keeps the value and replaces the rest, so everything else is sent as it is.
  const submit = submitWith(() => accessOf(draft), "Access saved.");
  return (
    <form class="card form" onSubmit={submit} noValidate aria-label="Edit access">
      <h2>Edit access</h2>
      <AgentAccess agents={agents} draft={draft} onChange={setDraft} errors={{ agents: errors.fields.agents, readers: errors.fields.readers }} />
      <FormFooter errors={errors} busy={busy} submitLabel="Save access" onCancel={onCancel} />
    </form>
  );
}

export function ReplaceValue({ api, meta, onSaved, onCancel }: EditProps) {
  const [draft, setDraft] = useState(emptyValue);
  const { errors, busy, submitWith } = useSave(api, meta, onSaved);
  const submit = submitWith(() => valueInput(draft), `Value replaced: version ${meta.version + 1n}.`);
  return (
    <form class="card form" onSubmit={submit} noValidate aria-label="Replace value">
      <h2>Replace value</h2>
      <p class="hint">The new value becomes version {String(meta.version + 1n)}; description and access stay as they are.</p>
      <ValueEditor draft={draft} onChange={setDraft} error={errors.fields.value} />
      <FormFooter errors={errors} busy={busy} submitLabel="Save value" onCancel={onCancel} />
    </form>
  );
}

function FormFooter(props: { errors: FormErrors; busy: boolean; submitLabel: string; onCancel: () => void }) {
  return (
    <>
      {props.errors.general && <Alert>{props.errors.general}</Alert>}
      {props.busy && <Status>Saving…</Status>}
      <div class="actions">
        <button type="submit" class="primary" disabled={props.busy}>
          {props.submitLabel}
        </button>
        <button type="button" class="secondary" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </>
  );
}
