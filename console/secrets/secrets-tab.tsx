// The Secrets tab: the list, the add form or one secret's detail, chosen by the hash route (#/secrets, #/secrets/+add, #/secrets/NAME).
import { useState } from "preact/hooks";
import type { Api } from "../api.js";
import { navigate } from "../route.js";
import { AddSecret } from "./add-secret.js";
import { SecretDetail } from "./secret-detail.js";
import { SecretList } from "./secret-list.js";

const ADD = "+add";

export function SecretsTab(props: { api: Api; rest: string; session: string; onSession: (s: string) => void }) {
  const { api, rest, session } = props;
  const [notice, setNotice] = useState<string>();
  const back = (message?: string) => {
    setNotice(message);
    navigate("secrets");
  };
  // The add form replaces the list (and its "Add secret" button) while open, so the page has one form to fill.
  if (rest === ADD) return <AddSecret api={api} session={session} onDone={(added) => back(added ? `Secret ${added} added.` : undefined)} />;
  if (rest !== "") return <SecretDetail key={rest} api={api} session={session} name={rest} onDeleted={(name) => back(`Secret ${name} deleted.`)} />;
  return (
    <SecretList
      api={api}
      session={session}
      onSession={props.onSession}
      notice={notice}
      onAdd={() => {
        setNotice(undefined);
        navigate("secrets", ADD);
      }}
    />
  );
}
