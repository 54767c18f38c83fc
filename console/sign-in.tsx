// The sign-in screen: paste a token, checked with one admin call before the console opens.
// The field is a text input masked by CSS (not type=password), so it keeps the textbox role tests and screen readers expect.
import { useState } from "preact/hooks";
import { checkToken } from "./api.js";
import { Alert, Status } from "./ui.js";

export function SignIn(props: { onSignedIn: (token: string) => void; notice?: string | undefined }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(props.notice);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const pasted = token.trim();
    if (pasted === "") return setError("Paste a token first.");
    setBusy(true);
    setError(undefined);
    const problem = await checkToken(pasted);
    setBusy(false);
    if (problem !== undefined) return setError(problem);
    setToken("");
    props.onSignedIn(pasted);
  };
  return (
    <main class="sign-in">
      <form class="card" onSubmit={submit} noValidate>
        <h1>Veil console</h1>
        <p class="lead">Sign in with an admin token. The operator token is in the data dir's <code>admin.token</code>.</p>
        <div class="field">
          <label for="token">Token</label>
          <input
            id="token"
            type="text"
            class="masked"
            autocomplete="off"
            spellcheck={false}
            value={token}
            aria-describedby={error ? "token-error" : undefined}
            aria-invalid={error ? true : undefined}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </div>
        {error && (
          <div id="token-error">
            <Alert>{error}</Alert>
          </div>
        )}
        {busy && <Status>Checking the token…</Status>}
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
        <p class="hint">The token stays in this tab only (memory and session storage) until you sign out or close the tab.</p>
      </form>
    </main>
  );
}
