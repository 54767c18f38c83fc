// The registry of live conversations: start, find by owner, idle expiry, per-tenant cap, shutdown.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Conversation, type ConversationOwner, type ConversationSettings } from "./conversation.js";
import { fail } from "./errors.js";
import { mountWorkspace, openShellSession, type ResourceLimits, unmountWorkspace } from "./executor.js";
import { createMaskSet } from "./masker.js";

/** Limits and places the registry works with. */
export interface ConversationLimits {
  workRoot: string;
  sandbox: "bubblewrap" | "none";
  idleTimeoutMs: number;
  maxPerTenant: number;
  /** Per-conversation resource limits; none when absent. */
  resources?: ResourceLimits;
}

/** What a new conversation needs besides its settings. */
export interface StartRequest extends ConversationSettings {
  owner: ConversationOwner;
  env: Record<string, string>;
  workingDir: string;
  network: boolean;
}

/** Creates the registry. Call `closeAll()` on shutdown: it kills every conversation's processes. */
export function createConversations(limits: ConversationLimits) {
  const live = new Map<string, Conversation>();
  mkdirSync(limits.workRoot, { recursive: true, mode: 0o700 });

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const c of live.values()) {
      if (c.running === 0 && now - c.lastActive > limits.idleTimeoutMs) void c.end();
    }
  }, Math.min(limits.idleTimeoutMs, 5_000));
  sweep.unref();

  function countFor(tenant: string): number {
    let n = 0;
    for (const c of live.values()) if (c.owner.tenant === tenant) n++;
    return n;
  }

  return {
    /** Opens the shell with the secret snapshot; over the tenant's cap is RESOURCE_EXHAUSTED. */
    async start(request: StartRequest): Promise<Conversation> {
      if (countFor(request.owner.tenant) >= limits.maxPerTenant) {
        throw fail.exhausted(`conversations: at most ${limits.maxPerTenant} live conversations per tenant; end one first`);
      }
      const masks = createMaskSet(request.secrets.flatMap((s) => s.values));
      const secretEnv = request.inject === "declared" ? Object.assign({}, ...request.secrets.map((s) => s.env)) : {};
      const workspace = join(limits.workRoot, `ws_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`);
      mkdirSync(workspace, { mode: 0o700 });
      const removeWorkspace = () => {
        unmountWorkspace(workspace);
        rmSync(workspace, { recursive: true, force: true });
      };
      let shell: Awaited<ReturnType<typeof openShellSession>>;
      try {
        if (limits.resources) await mountWorkspace({ path: workspace, sizeBytes: limits.resources.diskBytes });
        shell = await openShellSession({
          workspace,
          env: { ...request.env, ...secretEnv },
          sandbox: limits.sandbox,
          network: request.network,
          ...(request.workingDir !== "" ? { workingDir: request.workingDir } : {}),
          ...(limits.resources ? { limits: limits.resources } : {}),
        });
      } catch (error) {
        removeWorkspace();
        if (request.workingDir !== "" && /workingDir/.test((error as Error).message)) throw fail.invalid("working_dir: must stay inside the workspace");
        throw error;
      }
      const conversation = new Conversation(request.owner, request, limits.sandbox, shell, masks, (c) => {
        live.delete(c.id);
        removeWorkspace();
      });
      live.set(conversation.id, conversation);
      return conversation;
    },

    /** Finds a conversation for its tenant (and agent, for agent callers); anything else is NOT_FOUND. */
    find(caller: { tenant: string; agent?: string }, id: string): Conversation {
      const c = live.get(id);
      const visible = c !== undefined && c.owner.tenant === caller.tenant && (caller.agent === undefined || caller.agent === c.owner.agent);
      if (!visible) throw fail.notFound(`conversation_id: no live conversation ${id}`);
      return c;
    },

    /** How many conversations are live (all tenants). */
    get size(): number {
      return live.size;
    },

    /** Ends every conversation: used on shutdown. */
    async closeAll(): Promise<void> {
      clearInterval(sweep);
      await Promise.all([...live.values()].map((c) => c.end()));
    },
  };
}

/** The conversation registry. */
export type Conversations = ReturnType<typeof createConversations>;
