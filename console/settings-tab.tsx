// The Settings tab: the tenant's LLM model, base URL and API key; the key is write-only (shown as ********** when set).
import { useEffect, useState } from "preact/hooks";
import { Expose } from "../gen/veil/v1/settings_pb.js";
import type { Api } from "./api.js";
import { formErrors } from "./form-errors.js";
import { Alert, Status, TextField, useLoad } from "./ui.js";

export function SettingsTab({ api }: { api: Api }) {
  const current = useLoad(() => api.settings.getSettings({ expose: Expose.REDACTED }), [api]);
  const llm = current.data?.settings?.llm;
  const [model, setModel] = useState("");
  const [baseUrl, setBaseUrl] = useState("");
  // Only what is typed here: the stored key never comes back to the page (the server redacts it).
  const [apiKey, setApiKey] = useState("");
  const [errors, setErrors] = useState<ReturnType<typeof formErrors>>({ fields: {} });
  const [notice, setNotice] = useState<string>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setModel(llm?.model ?? "");
    setBaseUrl(llm?.baseUrl ?? "");
  }, [llm]);
  const keySet = (llm?.apiKey ?? "") !== "";

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErrors({ fields: {} });
    setNotice(undefined);
    try {
      // A partial update: an empty key field leaves the stored key as it is.
      await api.settings.updateSettings({ settings: { llm: { model, baseUrl, ...(apiKey !== "" ? { apiKey } : {}) } } });
      setApiKey("");
      setNotice("Settings saved.");
      current.reload();
    } catch (error) {
      setErrors(formErrors(error, (path) => ({ model: "model", base_url: "baseUrl", api_key: "apiKey" })[path.replace(/^settings\.llm\./, "")]));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="settings-heading">
      <h1 id="settings-heading">Settings</h1>
      <p class="lead">The LLM settings agents of this tenant receive (injected as LLM_MODEL, LLM_BASE_URL and LLM_API_KEY when a conversation asks).</p>
      {current.error && <Alert>Could not load the settings: {current.error}</Alert>}
      {current.loading && <Status>Loading settings…</Status>}
      {/* The form waits for the stored settings, so they never overwrite what someone already typed. */}
      {current.data && (
        <form class="card form narrow" onSubmit={submit} noValidate aria-labelledby="settings-heading">
          <TextField label="Model" value={model} onInput={setModel} error={errors.fields.model} autocomplete="off" spellcheck={false} />
          <TextField label="Base URL" value={baseUrl} onInput={setBaseUrl} error={errors.fields.baseUrl} autocomplete="off" spellcheck={false} placeholder="https://api.example.com/v1" />
          <TextField
            label="API key"
            value={apiKey}
            onInput={setApiKey}
            class="masked-field"
            placeholder={keySet ? "**********" : "not set"}
            hint={keySet ? "Write-only: a key is stored. Leave empty to keep it; type a new one to replace it." : "Write-only: stored encrypted, never shown again."}
            error={errors.fields.apiKey}
            autocomplete="off"
            spellcheck={false}
          />
          {errors.general && <Alert>{errors.general}</Alert>}
          {busy && <Status>Saving…</Status>}
          {notice && <Status>{notice}</Status>}
          <div class="actions">
            <button type="submit" class="primary" disabled={busy}>
              Save settings
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
