// The "Add secret" form: name, description, the value (single or key/value pairs), agent access; "Add" saves with expected_version 0.
import { Code } from "@connectrpc/connect";
import { useEffect, useRef, useState } from "preact/hooks";
import { SECRET_NAME_PATTERN, SECRET_NAME_RULE } from "../../server/domain/name-rules.js";
import { type Api, errorCode } from "../api.js";
import { type FormErrors, formErrors, secretFieldOf } from "../form-errors.js";
import { Alert, Status, TextField } from "../ui.js";
import { type AccessDraft, AgentAccess, accessDraft, accessOf } from "./agent-access.js";
import { useKnownAgents } from "./known-agents.js";
import { emptyValue, type ValueDraft, ValueEditor, valueInput } from "./value-editor.js";

export function AddSecret(props: { api: Api; session: string; onDone: (added?: string) => void }) {
  const { api, session } = props;
  const agents = useKnownAgents(api, session);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [value, setValue] = useState<ValueDraft>(emptyValue);
  const [access, setAccess] = useState<AccessDraft>(() => accessDraft([], []));
  const [errors, setErrors] = useState<FormErrors>({ fields: {} });
  const [busy, setBusy] = useState(false);
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => headingRef.current?.focus(), []);

  const submit = async (e: Event) => {
    e.preventDefault();
    // The same rule as the server, from the one module both use; the server checks again.
    if (!SECRET_NAME_PATTERN.test(name)) return setErrors({ fields: { name: SECRET_NAME_RULE } });
    setBusy(true);
    setErrors({ fields: {} });
    try {
      await api.secrets.setSecrets({ session, secrets: [{ name, description, ...valueInput(value), ...accessOf(access), expectedVersion: 0n }] });
      props.onDone(name);
    } catch (error) {
      if (errorCode(error) === Code.Aborted) setErrors({ fields: { name: `A secret named ${name} already exists${session ? " in this session" : ""}.` } });
      else setErrors(formErrors(error, secretFieldOf));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="add-heading">
      <h1 id="add-heading" ref={headingRef} tabIndex={-1}>
        Add secret
      </h1>
      <p class="lead">{session ? `In session ${session}.` : "Tenant-wide: every session sees it."}</p>
      <form class="card form" onSubmit={submit} noValidate>
        <TextField
          label="Name"
          value={name}
          onInput={setName}
          hint="An environment variable name: a letter, then letters, digits or _ (at most 64)."
          error={errors.fields.name}
          autocomplete="off"
          spellcheck={false}
          class="mono-input"
        />
        <TextField label="Description" value={description} onInput={setDescription} hint="Optional: what it is for (at most 1 KiB)." error={errors.fields.description} autocomplete="off" />
        <ValueEditor draft={value} onChange={setValue} error={errors.fields.value} />
        <AgentAccess agents={agents} draft={access} onChange={setAccess} errors={{ agents: errors.fields.agents, readers: errors.fields.readers }} />
        {errors.general && <Alert>{errors.general}</Alert>}
        {busy && <Status>Saving…</Status>}
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            Add
          </button>
          <button type="button" class="secondary" onClick={() => props.onDone()}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
