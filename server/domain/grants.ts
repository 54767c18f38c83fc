// The access policy for agents: who sees, injects and reads a secret, and who gets network.
import { fail } from "./errors.js";
import type { Principal } from "./principal.js";
import type { SecretRecord } from "./secret-records.js";

/** Writes and deletes: admin tokens only. */
export function requireAdmin(principal: Principal, action: string): void {
  if (principal.role !== "admin") throw fail.denied(`${action}: agent tokens cannot do this; use an admin token`);
}

/** What a caller wants to do with one secret. */
export type SecretAction = "list" | "inject" | "read";

/** How the policy answers: allowed, refused openly, or refused as if the secret did not exist. */
type Decision = "ok" | "denied" | "hidden";

/** Whether `allowed_agents` grants the principal's agent injection: empty means every agent of the tenant. */
function injects(agent: string, record: SecretRecord): boolean {
  return record.allowedAgents.length === 0 || record.allowedAgents.includes(agent);
}

/**
 * One rule per action, for agent tokens (admins may do everything in their tenant). An
 * agent not granted injection does not learn the secret exists, except when it declares
 * the name in a conversation, where the start fails with PERMISSION_DENIED as before.
 */
const AGENT_RULES: Record<SecretAction, (agent: string, record: SecretRecord) => Decision> = {
  list: (agent, record) => (injects(agent, record) ? "ok" : "hidden"),
  inject: (agent, record) => (injects(agent, record) ? "ok" : "denied"),
  read: (agent, record) => (!injects(agent, record) ? "hidden" : record.agentReaders.includes(agent) ? "ok" : "denied"),
};

/** The policy's answer without throwing (listings filter with it). */
export function decide(principal: Principal, action: SecretAction, record: SecretRecord): Decision {
  if (principal.role === "admin") return "ok";
  return AGENT_RULES[action](principal.agent ?? "", record);
}

/**
 * Throws unless the principal may do `action` with `record`. `field` names the request
 * field the error points at (`name`, `secrets[2]`). A hidden secret answers exactly like a
 * missing one.
 */
export function authorizeSecret(principal: Principal, action: SecretAction, record: SecretRecord, field: string): void {
  const decision = decide(principal, action, record);
  if (decision === "ok") return;
  const { name } = record;
  if (decision === "hidden") throw fail.notFound(`${field}: no secret named ${name}`);
  if (action === "read") {
    throw fail.denied(
      `${field}: agent ${principal.agent} may inject ${name} but is not an agent_reader of it; an admin can add it (veil secret set ${name} --reader ${principal.agent})`,
    );
  }
  throw fail.denied(`${field}: secret ${name} is not granted to agent ${principal.agent}`);
}

/** Unrestricted network in a conversation: admins always, agent tokens only when minted with allow_network. */
export function authorizeNetwork(principal: Principal, network: boolean): void {
  if (!network || principal.role === "admin" || principal.allowNetwork === true) return;
  throw fail.denied(`network: agent tokens need a token created with allow_network (veil token create --agent ${principal.agent} --allow-network)`);
}
