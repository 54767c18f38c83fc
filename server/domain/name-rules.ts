// The secret and agent name rules, in one Connect- and zod-free place: the server validates with them, the console checks them as you type.

/** Environment-variable rules: what a secret name may be. */
export const SECRET_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
/** The rule as the server states it in INVALID_ARGUMENT messages. */
export const SECRET_NAME_RULE = "must match ^[A-Za-z][A-Za-z0-9_]{0,63}$ (a letter, then letters, digits or _; 1-64 chars)";

/** What an agent name may be (tokens, allowed_agents, agent_readers). */
export const AGENT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
/** The agent name rule as the server states it for allowed_agents and agent_readers. */
export const AGENT_NAME_RULE = "must be an agent name matching ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$";
