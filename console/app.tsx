// The console's top level: signed out shows the sign-in; signed in, the header and the five tabs.
import { useCallback, useMemo, useState } from "preact/hooks";
import { AgentsTab } from "./agents-tab.js";
import { type Api, createApi, INVALID_TOKEN, storedToken, storeToken } from "./api.js";
import { AuditTab } from "./audit-tab.js";
import { navigate, type TabId, useRoute } from "./route.js";
import { SecretsTab } from "./secrets/secrets-tab.js";
import { SettingsTab } from "./settings-tab.js";
import { SignIn } from "./sign-in.js";
import { panelId, type TabDef, tabId, Tabs } from "./tabs.js";
import { TokensTab } from "./tokens-tab.js";

const TAB_DEFS: readonly TabDef<TabId>[] = [
  { id: "secrets", label: "Secrets" },
  { id: "agents", label: "Agents" },
  { id: "tokens", label: "Tokens" },
  { id: "audit", label: "Audit" },
  { id: "settings", label: "Settings" },
];

export function App() {
  const [token, setToken] = useState<string | undefined>(() => storedToken());
  const [notice, setNotice] = useState<string>();
  const signOut = useCallback((message?: string) => {
    storeToken(undefined);
    setToken(undefined);
    setNotice(message);
  }, []);
  // A call that answers UNAUTHENTICATED mid-session (revoked, expired) signs out with the reason.
  const api = useMemo(() => (token === undefined ? undefined : createApi(token, () => signOut(INVALID_TOKEN))), [token, signOut]);
  if (api === undefined) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(t) => {
          storeToken(t);
          setNotice(undefined);
          setToken(t);
        }}
      />
    );
  }
  return <Shell api={api} onSignOut={() => signOut()} />;
}

function Shell({ api, onSignOut }: { api: Api; onSignOut: () => void }) {
  const route = useRoute();
  // The session scope is shared by the Secrets views and survives switching tabs.
  const [session, setSession] = useState("");
  return (
    <div class="shell">
      <header class="topbar">
        <span class="brand">Veil</span>
        <span class="brand-sub">console</span>
        <button type="button" class="secondary small signout" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <nav class="tabbar">
        <Tabs label="Console sections" tabs={TAB_DEFS} selected={route.tab} onSelect={(id) => navigate(id)} />
      </nav>
      <main class="content" id={panelId(route.tab)} role="tabpanel" aria-labelledby={tabId(route.tab)} tabIndex={-1}>
        {route.tab === "secrets" && <SecretsTab api={api} rest={route.rest} session={session} onSession={setSession} />}
        {route.tab === "agents" && <AgentsTab api={api} agent={route.rest} />}
        {route.tab === "tokens" && <TokensTab api={api} />}
        {route.tab === "audit" && <AuditTab api={api} />}
        {route.tab === "settings" && <SettingsTab api={api} />}
      </main>
    </div>
  );
}
