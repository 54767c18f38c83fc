// Small shared pieces of the console: status and alert regions, labelled fields, the two-step confirm button, paging, loading and dates.
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useId, useRef, useState } from "preact/hooks";
import { errorText } from "./api.js";

export function Status({ children }: { children: ComponentChildren }) {
  return (
    <p class="status" role="status">
      {children}
    </p>
  );
}

export function Alert({ children }: { children: ComponentChildren }) {
  return (
    <div class="alert" role="alert">
      {children}
    </div>
  );
}

/** The input attributes the console's fields pass through. */
interface InputProps {
  class?: string;
  autocomplete?: string;
  spellcheck?: boolean;
  placeholder?: string;
  list?: string;
}

/** A labelled text input with an optional hint (the rule) and error, wired with aria-describedby/aria-invalid. */
export function TextField(props: { label: string; value: string; onInput: (value: string) => void; hint?: string; error?: string | undefined; multiline?: boolean } & InputProps) {
  const { label, value, onInput, hint, error, multiline, class: cls, ...rest } = props;
  const id = useId();
  const describedBy = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
  const common = { id, value, "aria-describedby": describedBy, "aria-invalid": error ? true : undefined };
  return (
    <div class={`field ${cls ?? ""}`}>
      <label for={id}>{label}</label>
      {multiline ? (
        <textarea {...common} rows={4} spellcheck={false} onInput={(e) => onInput(e.currentTarget.value)} />
      ) : (
        <input type="text" {...common} {...rest} onInput={(e) => onInput(e.currentTarget.value)} />
      )}
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p class="field-error" id={`${id}-error`}>
          {error}
        </p>
      )}
    </div>
  );
}

/**
 * A destructive action in two presses: the first swaps the button for a prompt, a confirm
 * button (`confirmLabel`, which repeats the action's name) and Cancel. No window.confirm.
 */
export function ConfirmButton(props: { label: string; confirmLabel: string; prompt: string; onConfirm: () => Promise<void> | void; small?: boolean }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);
  const size = props.small ? " small" : "";
  if (!asking) {
    return (
      <button type="button" class={`danger${size}`} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  }
  return (
    <span class="confirm">
      <span class="confirm-prompt">{props.prompt}</span>
      <button
        type="button"
        class={`danger solid${size}`}
        ref={confirmRef}
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          try {
            await props.onConfirm();
          } finally {
            setBusy(false);
            setAsking(false);
          }
        }}
      >
        {props.confirmLabel}
      </button>
      <button type="button" class={`secondary${size}`} onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

/** The state of one load: data once it arrived, the error if it failed. */
export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change (and on reload), dropping answers that arrive after a newer request. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: string | undefined; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true, error: undefined }));
    load().then(
      (data) => mine === seq.current && setState({ data, error: undefined, loading: false }),
      (error: unknown) => mine === seq.current && setState((s) => ({ data: s.data, error: errorText(error), loading: false })),
    );
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A protobuf timestamp as local date and time; "" when absent. */
export function formatTime(ts: Timestamp | undefined): string {
  return ts === undefined ? "" : dateFormat.format(timestampDate(ts));
}

/** Comma-separated names as a clean list (blanks dropped, duplicates once). */
export function splitNames(text: string): string[] {
  return [...new Set(text.split(",").map((s) => s.trim()).filter(Boolean))];
}

/** Previous/Next over page tokens, with the range shown. */
export function Pager(props: { range?: string; pages: readonly string[]; setPages: (pages: string[]) => void; nextPageToken: string | undefined }) {
  // `pages` holds the token of every page opened so far ("" first): Previous drops the last one.
  const { pages, setPages, nextPageToken = "" } = props;
  if (pages.length <= 1 && nextPageToken === "") return null;
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" class="secondary" disabled={pages.length <= 1} onClick={() => setPages(pages.slice(0, -1))}>
        Previous
      </button>
      <span class="range">{props.range && `Showing ${props.range}`}</span>
      <button type="button" class="secondary" disabled={nextPageToken === ""} onClick={() => setPages([...pages, nextPageToken])}>
        Next
      </button>
    </nav>
  );
}
