// The "Agent access" fieldset: one checkbox per known agent (labelled with its name), "Other agents" for agents without a token yet, and "Agent readers".
import { useId } from "preact/hooks";
import { splitNames, TextField } from "../ui.js";

/** What the fieldset edits: allowed_agents (checked + other) and agent_readers. */
export interface AccessDraft {
  /** The agents granted when editing began: they keep their boxes even when unchecked. */
  offered: string[];
  checked: string[];
  other: string;
  readers: string;
}

export function accessDraft(allowed: readonly string[], readers: readonly string[]): AccessDraft {
  return { offered: [...allowed], checked: [...allowed], other: "", readers: readers.join(", ") };
}

/** allowed_agents and agent_readers as SetSecrets takes them. */
export function accessOf(draft: AccessDraft): { allowedAgents: string[]; agentReaders: string[] } {
  return { allowedAgents: [...new Set([...draft.checked, ...splitNames(draft.other)])], agentReaders: splitNames(draft.readers) };
}

export function AgentAccess(props: { agents: readonly string[]; draft: AccessDraft; onChange: (draft: AccessDraft) => void; errors: { agents?: string | undefined; readers?: string | undefined } }) {
  const { draft, onChange } = props;
  const noteId = useId();
  // Agents already granted but unknown to the list (no token, not elsewhere in grants) still get their box.
  const names = [...new Set([...props.agents, ...draft.offered])].sort();
  const toggle = (name: string, on: boolean) => onChange({ ...draft, checked: on ? [...draft.checked, name] : draft.checked.filter((n) => n !== name) });
  return (
    <fieldset class="access" aria-describedby={noteId}>
      <legend>Agent access</legend>
      <p class="note" id={noteId}>
        None checked means every agent of the tenant may use this secret.
      </p>
      {names.length === 0 ? (
        <p class="hint">No agents known yet: name them under “Other agents”.</p>
      ) : (
        <div class="checks">
          {names.map((name) => (
            <label key={name} class="check">
              <input type="checkbox" checked={draft.checked.includes(name)} onChange={(e) => toggle(name, e.currentTarget.checked)} />
              <span>{name}</span>
            </label>
          ))}
        </div>
      )}
      <TextField
        label="Other agents"
        value={draft.other}
        onInput={(other) => onChange({ ...draft, other })}
        hint="Comma-separated names of agents that have no token yet."
        error={props.errors.agents}
        autocomplete="off"
      />
      <TextField
        label="Agent readers"
        value={draft.readers}
        onInput={(readers) => onChange({ ...draft, readers })}
        hint="Comma-separated agents that may also read the value (GetSecret); each must have access above."
        error={props.errors.readers}
        autocomplete="off"
      />
    </fieldset>
  );
}
