// The agent directory: which agents a tenant knows (tokens and grants) and what one agent may use, answered by the access policy.
import { MAX_PAGE_SIZE } from "./page-token.js";
import { authorize, decide } from "./policy.js";
import type { Principal } from "./principal.js";
import type { SecretRecord } from "./secret-records.js";
import type { TokenRecord, Tokens } from "./tokens.js";
import type { Vault } from "./vault.js";

/** One agent as the directory sees it. */
export interface AgentSummary {
  name: string;
  activeTokens: number;
  namedInGrants: number;
  allowNetwork: boolean;
}

/** One secret an agent may inject, and whether it may also read it. */
export interface AgentSecret {
  record: SecretRecord;
  read: boolean;
  everyAgent: boolean;
}

/** Creates the directory over the token registry and the vault (both still enforce their own admin rules). */
export function createAgentDirectory(tokens: Tokens, vault: Vault, now: () => Date = () => new Date()) {
  async function allTokens(principal: Principal): Promise<TokenRecord[]> {
    const out: TokenRecord[] = [];
    let pageToken = "";
    do {
      const page = await tokens.list(principal, { tenant: principal.tenant, pageSize: MAX_PAGE_SIZE, pageToken });
      out.push(...page.records);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return out;
  }

  async function scope(principal: Principal, session: string): Promise<SecretRecord[]> {
    const out: SecretRecord[] = [];
    let pageToken = "";
    do {
      const page = await vault.listSecrets(principal, session, { pageSize: MAX_PAGE_SIZE, pageToken, namePrefix: "" });
      out.push(...page.records);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return out;
  }

  /** What a conversation in `session` sees: the session's secrets over the tenant-wide ones, by name. */
  async function layered(principal: Principal, session: string): Promise<SecretRecord[]> {
    const byName = new Map((await scope(principal, "")).map((r) => [r.name, r]));
    if (session !== "") for (const record of await scope(principal, session)) byName.set(record.name, record);
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  const isActive = (t: TokenRecord) => !t.revoked && (t.expiresAt === undefined || new Date(t.expiresAt) > now());

  return {
    /** Every agent named by a token or a grant, in name order. */
    async listAgents(principal: Principal, session: string): Promise<AgentSummary[]> {
      authorize(principal, "agent.list");
      const agents = new Map<string, AgentSummary>();
      const entry = (name: string) => {
        const found = agents.get(name) ?? { name, activeTokens: 0, namedInGrants: 0, allowNetwork: false };
        agents.set(name, found);
        return found;
      };
      for (const token of await allTokens(principal)) {
        if (token.role !== "agent" || token.agent === "") continue;
        const agent = entry(token.agent);
        if (!isActive(token)) continue;
        agent.activeTokens += 1;
        if (token.allowNetwork === true) agent.allowNetwork = true;
      }
      for (const record of await layered(principal, session)) {
        for (const name of new Set([...record.allowedAgents, ...record.agentReaders])) entry(name).namedInGrants += 1;
      }
      return [...agents.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },

    /** The secrets `agent` may inject in a conversation in `session`, judged by the same policy a conversation start uses. */
    async agentAccess(principal: Principal, agent: string, session: string): Promise<{ secrets: AgentSecret[]; activeTokens: number }> {
      authorize(principal, "agent.access");
      const asAgent: Principal = { tenant: principal.tenant, role: "agent", agent, tokenId: "", operator: false };
      const secrets = (await layered(principal, session))
        .filter((record) => decide(asAgent, "secret.inject", record) === "ok")
        .map((record) => ({ record, read: decide(asAgent, "secret.read", record) === "ok", everyAgent: record.allowedAgents.length === 0 }));
      const activeTokens = (await allTokens(principal)).filter((t) => t.role === "agent" && t.agent === agent && isActive(t)).length;
      return { secrets, activeTokens };
    },
  };
}

/** The directory's operations. */
export type AgentDirectory = ReturnType<typeof createAgentDirectory>;
