// AgentService: the agents of a tenant and, for one agent, the secrets it may use (admin only, never a value).
import type { ServiceImpl } from "@connectrpc/connect";
import type { AgentDirectory } from "../domain/agents.js";
import { auditTrail } from "../rpc/audit.js";
import { principalOf } from "../rpc/context.js";
import type { AgentService } from "../../gen/veil/v1/agent_pb.js";

/** Builds the AgentService handlers over the agent directory. */
export function createAgentService({ agents }: { agents: AgentDirectory }): ServiceImpl<typeof AgentService> {
  return {
    async listAgents(req, ctx) {
      return { agents: await agents.listAgents(principalOf(ctx), req.session) };
    },

    async getAgentAccess(req, ctx) {
      auditTrail(ctx).note({ session: req.session, detail: `agent ${req.agent}` });
      const access = await agents.agentAccess(principalOf(ctx), req.agent, req.session);
      return {
        agent: req.agent,
        activeTokens: access.activeTokens,
        secrets: access.secrets.map(({ record, read, everyAgent }) => ({
          name: record.name,
          description: record.description,
          session: record.session,
          inject: true,
          read,
          everyAgent,
        })),
      };
    },
  };
}
