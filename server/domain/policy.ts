// The access policy: one table of who may do what, and the one function every allow/deny decision goes through.
import { fail } from "../errors.js";
import type { Principal } from "./principal.js";
import type { SecretRecord } from "./secret-records.js";

/** A token as the policy sees it when one is revoked. */
export interface TokenTarget {
  id: string;
  tenant: string;
  operator: boolean;
}

/** A live conversation as the policy sees it when a call reaches for it. */
export interface ConversationTarget {
  id: string;
  owner: { tenant: string; agent: string };
}

/**
 * Every action the policy decides, with the record it is judged against (`undefined`: the
 * action alone decides). Secrets of another tenant never reach the policy: the vault reads
 * only under the caller's own tenant prefix.
 */
export interface PolicyRecords {
  /** Seeing a secret's metadata in a listing. */
  "secret.list": SecretRecord;
  /** Injecting a secret into a conversation (declared, referenced, or a lookup's header). */
  "secret.inject": SecretRecord;
  /** Reading a secret's value over the API. */
  "secret.read": SecretRecord;
  "secret.write": undefined;
  "secret.delete": undefined;
  "agent.list": undefined;
  "agent.access": undefined;
  /** The tenant the new token is for. */
  "token.create": { tenant: string };
  /** The tenant whose tokens are listed. */
  "token.list": { tenant: string };
  /** Without a record: may this token revoke at all; with one: may it revoke that token. */
  "token.revoke": TokenTarget | undefined;
  /** Reaching past the token's own tenant (the operator finding a token of any tenant). */
  "tenant.any": undefined;
  "settings.read": undefined;
  "settings.write": undefined;
  "audit.read": undefined;
  "key.rotate": undefined;
  "key.retire": undefined;
  "key.status": undefined;
  backup: undefined;
  "conversation.start": undefined;
  /** The agent a conversation start names ("" = the token's own). */
  "conversation.act_as": { agent: string };
  /** Running, feeding, signalling or ending a live conversation. */
  "conversation.use": ConversationTarget;
  /** Unrestricted network in a conversation (NETWORK_MODE_EGRESS needs no grant). */
  network: undefined;
}

/** An action the policy decides. */
export type Action = keyof PolicyRecords;

/** How the policy answers: allowed, refused openly, or refused as if the thing did not exist. */
export type Decision = "ok" | "denied" | "hidden";

/** A refusal and the message the caller gets: it names the fix, never a value. */
interface Refusal {
  kind: "denied" | "hidden";
  message: string;
}

/** One row of the table: undefined allows; `where` names the request field an error points at. */
type Rule<R> = (principal: Principal, record: R, where: string) => Refusal | undefined;

const denied = (message: string): Refusal => ({ kind: "denied", message });
const hidden = (message: string): Refusal => ({ kind: "hidden", message });

/** Any token of the tenant. */
const everyone: Rule<unknown> = () => undefined;
/** Admin tokens only (the operator token is one). */
const admins =
  (message: string): Rule<unknown> =>
  (p) =>
    p.role === "admin" ? undefined : denied(message);
/** The operator token only: server-wide things no tenant admin may touch. */
const operator =
  (message: string): Rule<unknown> =>
  (p) =>
    p.operator ? undefined : denied(message);

/** Admin tokens, and only for their own tenant unless they are the operator's. */
const ownTenant =
  (agentMessage: string, tenantMessage: string): Rule<{ tenant: string }> =>
  (p, record) =>
    p.role !== "admin" ? denied(agentMessage) : record.tenant !== p.tenant && !p.operator ? denied(tenantMessage) : undefined;

/** Whether `allowed_agents` grants the agent injection: empty means every agent of the tenant. */
function injects(agent: string, record: SecretRecord): boolean {
  return record.allowedAgents.length === 0 || record.allowedAgents.includes(agent);
}

/** Admins may do everything with their tenant's secrets; agent tokens follow the record's grants. */
const forAgents =
  (rule: (agent: string, record: SecretRecord, where: string) => Refusal | undefined): Rule<SecretRecord> =>
  (p, record, where) =>
    p.role === "admin" ? undefined : rule(p.agent ?? "", record, where);

const noSecret = (record: SecretRecord, where: string) => hidden(`${where}: no secret named ${record.name}`);

/**
 * The table. An agent not granted injection does not learn the secret exists, except when it
 * declares the name in a conversation, where the start fails with PERMISSION_DENIED.
 */
const POLICY: { [A in Action]: Rule<PolicyRecords[A]> } = {
  "secret.list": forAgents((agent, record, where) => (injects(agent, record) ? undefined : noSecret(record, where))),
  "secret.inject": forAgents((agent, record, where) =>
    injects(agent, record) ? undefined : denied(`${where}: secret ${record.name} is not granted to agent ${agent}`),
  ),
  "secret.read": forAgents((agent, record, where) =>
    !injects(agent, record)
      ? noSecret(record, where)
      : record.agentReaders.includes(agent)
        ? undefined
        : denied(
            `${where}: agent ${agent} may inject ${record.name} but is not an agent_reader of it; an admin can add it (veil secret set ${record.name} --reader ${agent})`,
          ),
  ),
  "secret.write": admins("SetSecrets: agent tokens cannot do this; use an admin token"),
  "secret.delete": admins("DeleteSecret: agent tokens cannot do this; use an admin token"),
  "agent.list": admins("ListAgents: agent tokens cannot do this; use an admin token"),
  "agent.access": admins("GetAgentAccess: agent tokens cannot do this; use an admin token"),
  "token.create": ownTenant("CreateToken: agent tokens cannot mint tokens", "tenant: an admin token mints tokens only for its own tenant"),
  "token.list": ownTenant("ListTokens: agent tokens cannot list tokens", "tenant: an admin token lists only its own tenant"),
  "token.revoke": (p, target) => {
    if (p.role !== "admin") return denied("RevokeToken: agent tokens cannot revoke tokens");
    if (target === undefined) return undefined;
    if (target.tenant !== p.tenant && !p.operator) return hidden(`token_id: no token ${target.id}`);
    // A tenant admin of `default` must not lock out the one token that administers every tenant.
    if (target.operator && !p.operator) {
      return denied(`token_id: ${target.id} is the operator token; only an operator token revokes it (offline: veil token reset-operator)`);
    }
    return undefined;
  },
  "tenant.any": operator("tenant: only the operator token acts on other tenants"),
  "settings.read": everyone,
  "settings.write": admins("UpdateSettings: agent tokens cannot change settings"),
  "audit.read": admins("ListAuditEvents: only admin tokens read the audit trail"),
  // Keys are server-wide, and a backup holds every tenant's data: not a tenant admin's to touch.
  "key.rotate": operator("keys: only the operator token manages key generations"),
  "key.retire": operator("keys: only the operator token manages key generations"),
  "key.status": operator("keys: only the operator token manages key generations"),
  backup: operator("backup: only the operator token takes backups (it holds every tenant's data)"),
  "conversation.start": everyone,
  "conversation.act_as": (p, { agent }) =>
    p.role === "agent" && agent !== "" && agent !== p.agent ? denied(`agent: this token acts only as agent ${p.agent}`) : undefined,
  // Another tenant's conversation, or another agent's for agent tokens, answers like a missing one.
  "conversation.use": (p, { id, owner }) =>
    owner.tenant === p.tenant && (p.role !== "agent" || owner.agent === p.agent) ? undefined : hidden(`conversation_id: no live conversation ${id}`),
  network: (p) =>
    p.role === "admin" || p.allowNetwork === true
      ? undefined
      : denied(`network: agent tokens need a token created with allow_network (veil token create --agent ${p.agent} --allow-network)`),
};

/** The record argument of an action: optional where the action alone decides. */
type RecordArgs<A extends Action> = undefined extends PolicyRecords[A] ? [record?: PolicyRecords[A], where?: string] : [record: PolicyRecords[A], where?: string];

function judge<A extends Action>(principal: Principal, action: A, args: RecordArgs<A>): Refusal | undefined {
  const [record, where = "name"] = args;
  return POLICY[action](principal, record as PolicyRecords[A], where);
}

/** The policy's answer without throwing (listings filter with it). */
export function decide<A extends Action>(principal: Principal, action: A, ...args: RecordArgs<A>): Decision {
  return judge(principal, action, args)?.kind ?? "ok";
}

/**
 * Throws unless the principal may do `action` (with `record`): PERMISSION_DENIED naming the
 * fix, or NOT_FOUND exactly like a missing thing when the caller must not learn it exists.
 * `where` names the request field the error points at (`name`, `secrets[2]`; default `name`).
 */
export function authorize<A extends Action>(principal: Principal, action: A, ...args: RecordArgs<A>): void {
  const refusal = judge(principal, action, args);
  if (refusal === undefined) return;
  throw refusal.kind === "hidden" ? fail.notFound(refusal.message) : fail.denied(refusal.message);
}
