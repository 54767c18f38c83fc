// The value part of a secret form: "Single value" (a multi-line "Value") or "Key/value pairs" (rows of "Key" and "Value", "Add pair").
import { useId } from "preact/hooks";

/** The value being typed, in either shape. */
export interface ValueDraft {
  type: "text" | "fields";
  text: string;
  pairs: { key: string; value: string }[];
}

export const emptyValue = (): ValueDraft => ({ type: "text", text: "", pairs: [{ key: "", value: "" }] });

/** The draft as SecretInput's `text` or `fields`. */
export function valueInput(draft: ValueDraft): { text: string } | { fields: Record<string, string> } {
  if (draft.type === "text") return { text: draft.text };
  return { fields: Object.fromEntries(draft.pairs.filter((p) => p.key !== "" || p.value !== "").map((p) => [p.key, p.value])) };
}

export function ValueEditor(props: { draft: ValueDraft; onChange: (draft: ValueDraft) => void; error?: string | undefined }) {
  const { draft, onChange } = props;
  const id = useId();
  const errorId = `${id}-error`;
  const invalid = props.error ? { "aria-invalid": true, "aria-describedby": errorId } : {};
  const setPair = (i: number, patch: Partial<{ key: string; value: string }>) => onChange({ ...draft, pairs: draft.pairs.map((p, j) => (j === i ? { ...p, ...patch } : p)) });
  return (
    <div class="value-editor">
      <fieldset class="radios">
        <legend>Value type</legend>
        <label class="check">
          <input type="radio" name={`${id}-type`} checked={draft.type === "text"} onChange={() => onChange({ ...draft, type: "text" })} />
          <span>Single value</span>
        </label>
        <label class="check">
          <input type="radio" name={`${id}-type`} checked={draft.type === "fields"} onChange={() => onChange({ ...draft, type: "fields" })} />
          <span>Key/value pairs</span>
        </label>
      </fieldset>
      {draft.type === "text" ? (
        <div class="field">
          <label for={`${id}-text`}>Value</label>
          <textarea id={`${id}-text`} class="value" rows={4} spellcheck={false} autocomplete="off" value={draft.text} onInput={(e) => onChange({ ...draft, text: e.currentTarget.value })} {...invalid} />
        </div>
      ) : (
        <div class="pairs">
          {draft.pairs.map((pair, i) => (
            <div class="pair" key={i}>
              <div class="field">
                <label for={`${id}-k${i}`}>Key</label>
                <input id={`${id}-k${i}`} type="text" autocomplete="off" spellcheck={false} value={pair.key} onInput={(e) => setPair(i, { key: e.currentTarget.value })} {...invalid} />
              </div>
              <div class="field grow">
                <label for={`${id}-v${i}`}>Value</label>
                <input id={`${id}-v${i}`} type="text" autocomplete="off" spellcheck={false} value={pair.value} onInput={(e) => setPair(i, { value: e.currentTarget.value })} {...invalid} />
              </div>
              {draft.pairs.length > 1 && (
                <button type="button" class="secondary small remove" aria-label={`Remove pair ${i + 1}`} onClick={() => onChange({ ...draft, pairs: draft.pairs.filter((_, j) => j !== i) })}>
                  Remove
                </button>
              )}
            </div>
          ))}
          <button type="button" class="secondary" onClick={() => onChange({ ...draft, pairs: [...draft.pairs, { key: "", value: "" }] })}>
            Add pair
          </button>
        </div>
      )}
      {props.error && (
        <p class="field-error" id={errorId}>
          {props.error}
        </p>
      )}
    </div>
  );
}
