// The Agents tab: every agent known from tokens and grants, and for a chosen one the secrets it may inject and read.
import type { Api } from "./api.js";
import { href } from "./route.js";
import { Alert, Status, useLoad } from "./ui.js";

export function AgentsTab({ api, agent }: { api: Api; agent: string }) {
  const list = useLoad(() => api.agents.listAgents({ session: "" }), [api]);
  const agents = list.data?.agents ?? [];
  return (
    <section aria-labelledby="agents-heading">
      <h1 id="agents-heading">Agents</h1>
      <p class="lead">Agents are known from their tokens and from the secrets that name them. Choose one to see what it may use.</p>
      {list.error && <Alert>Could not list the agents: {list.error}</Alert>}
      {list.loading && <Status>Loading agents…</Status>}
      {!list.loading && !list.error && agents.length === 0 && <p class="empty">No agents yet: create an agent token on the Tokens tab, or name an agent in a secret's access.</p>}
      {agents.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Agents</caption>
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col" class="num">Active tokens</th>
                <th scope="col" class="num">Named in grants</th>
                <th scope="col">Network</th>
              </tr>
            </thead>
            <tbody>
              {agents.map((a) => (
                <tr key={a.name} class={a.name === agent ? "selected" : undefined}>
                  <td>
                    <a class="mono" href={href("agents", a.name)} aria-current={a.name === agent ? "true" : undefined}>
                      {a.name}
                    </a>
                  </td>
                  <td class="num">{a.activeTokens}</td>
                  <td class="num">{a.namedInGrants}</td>
                  <td>{a.allowNetwork ? "allowed" : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {agent && <AgentAccessView key={agent} api={api} agent={agent} />}
    </section>
  );
}

function AgentAccessView({ api, agent }: { api: Api; agent: string }) {
  const access = useLoad(() => api.agents.getAgentAccess({ agent, session: "" }), [api, agent]);
  const secrets = access.data?.secrets ?? [];
  return (
    <section class="card" aria-labelledby="access-heading">
      <h2 id="access-heading">
        Secrets <span class="mono">{agent}</span> may use
      </h2>
      {access.error && <Alert>Could not load the access of {agent}: {access.error}</Alert>}
      {access.loading && <Status>Loading…</Status>}
      {access.data && secrets.length === 0 && <p class="empty">{agent} may use no secret.</p>}
      {secrets.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Secrets {agent} may use</caption>
            <thead>
              <tr>
                <th scope="col">Secret</th>
                <th scope="col">Description</th>
                <th scope="col">Scope</th>
                <th scope="col">May</th>
                <th scope="col">Granted</th>
              </tr>
            </thead>
            <tbody>
              {secrets.map((s) => (
                <tr key={`${s.session}/${s.name}`}>
                  <td class="mono">{s.name}</td>
                  <td class="desc">{s.description}</td>
                  <td>{s.session ? `session ${s.session}` : "tenant-wide"}</td>
                  <td>{s.read ? "inject and read" : s.inject ? "inject" : "—"}</td>
                  <td>{s.everyAgent ? "every agent" : "by name"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
