// The registry of live conversations: start, find by owner, idle expiry, per-tenant cap, shutdown.
import type { Server } from "node:net";
import { newConversationId } from "./conversation-id.js";
import { Conversation, type ConversationNetwork, type ConversationObserver, type ConversationOwner, type ConversationSettings } from "./conversation.js";
import { fail } from "../errors.js";
import { type EgressFiles, EgressNeedsSandboxError, mountWorkspace, openShellSession, type ResourceLimits, type SandboxStatus, type ShellSession } from "./executor.js";
import { DynamicUsers, isRoot, type RunAs } from "./executor/dynamic-user.js";
import { sandboxUnavailableMessage } from "./executor/sandbox.js";
import { compileMaskSetOffThread, warmMaskCompiler } from "./mask-compiler.js";
import { authorize } from "./policy.js";
import { Standby } from "./standby.js";
import type { Principal } from "./principal.js";
import type { WorkDir } from "./work-dir.js";
import { writeWorkspaceFiles } from "./workspace-files.js";

/** Limits and places the registry works with. */
export interface ConversationLimits {
  workDir: WorkDir;
  sandbox: SandboxStatus;
  /** Host paths commands must never see (data dir, master key file); the work dir is added here. */
  hidden: readonly string[];
  idleTimeoutMs: number;
  maxPerTenant: number;
  /** Per-conversation resource limits; none when absent. */
  resources?: ResourceLimits;
  /**
   * The seam to the egress gateway (not connected yet: the start request has no network mode for
   * it). `files` are the sandbox's trust files; `attach` serves one shell's 127.0.0.1:3128 listener
   * for `binding` (the conversation's gateway identity: placeholders, allowed hosts, owner) and
   * returns its detach. A conversation in egress mode passes `{ files, attach: (l) => attach(binding, l) }`
   * as the shell's `egress` option; the executor calls it for every shell, replacements included.
   */
  egress?: { files: EgressFiles; attach(binding: unknown, listener: Server): () => void };
  /** Counts commands and masked output for metrics. */
  observer?: ConversationObserver;
  /** This server's id: every conversation id names it, so other servers can route calls here. */
  serverId?: string;
  /** After a start, how long before the next standby shell is made (default STANDBY_DELAY_MS); a conversation's end makes it at once. */
  standbyDelayMs?: number;
}

/** What a new conversation needs besides its settings. */
export interface StartRequest extends ConversationSettings, Partial<ConversationNetwork> {
  owner: ConversationOwner;
  env: Record<string, string>;
  /** Rendered files, written into the workspace before the shell opens (workspace-relative path to text). */
  files?: Record<string, string>;
  workingDir: string;
  /** Unrestricted network (never together with networkMode "egress"). */
  network: boolean;
}

/** A shell opened before its conversation, with the workspace and uid it runs in. */
interface StandbyShell {
  session: ShellSession;
  workspace: string;
  user: RunAs | undefined;
}

/** Creates the registry. Call `closeAll()` on shutdown: it kills every conversation's processes. */
export function createConversations(limits: ConversationLimits) {
  let closing = false;
  const live = new Map<string, Conversation>();
  /** Egress-mode conversations by their egress id, for the gateway. */
  const byEgressId = new Map<string, Conversation>();
  /** Starts under way, per tenant: they hold a slot of the cap from before their first await. */
  const starting = new Map<string, number>();
  const { sandbox } = limits;
  // Loaded now, so the first conversation does not wait for the thread to start.
  if (sandbox.kind !== "unavailable") warmMaskCompiler();
  // As root, each conversation gets its own uid (in both sandbox modes); otherwise commands keep the server's.
  // Not when bwrap must run as root (no unprivileged user namespaces): it maps root to uid 1000 inside,
  // which could not enter a workspace owned by another uid; its PID namespace is what ends every process then.
  const users = isRoot() && (sandbox.kind !== "bubblewrap" || sandbox.asUser) ? new DynamicUsers() : undefined;
  const shellSandbox = sandbox.kind === "bubblewrap" ? sandbox : ({ kind: "none" } as const);
  const hidden = [...limits.hidden, limits.workDir.root];

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const c of live.values()) {
      if (c.running === 0 && now - c.lastActive > limits.idleTimeoutMs) void c.end();
    }
  }, Math.min(limits.idleTimeoutMs, 5_000));
  sweep.unref();

  function countFor(tenant: string): number {
    let n = starting.get(tenant) ?? 0;
    for (const c of live.values()) if (c.owner.tenant === tenant) n++;
    return n;
  }

  /** Takes a slot of the tenant's cap now, synchronously, so concurrent starts cannot all pass the check; returns its release. */
  function reserve(tenant: string): () => void {
    if (countFor(tenant) >= limits.maxPerTenant) {
      throw fail.exhausted(`conversations: at most ${limits.maxPerTenant} live conversations per tenant; end one first`);
    }
    starting.set(tenant, (starting.get(tenant) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (starting.get(tenant) ?? 1) - 1;
      if (left > 0) starting.set(tenant, left);
      else starting.delete(tenant);
    };
  }

  /** Gives back what a conversation held: its workspace and its uid (after the shell killed every process of it). */
  function cleanUp(workspace: string, user: RunAs | undefined) {
    // The uid goes back only once nothing of the conversation is left on disk under it.
    void limits.workDir.remove(workspace).then(() => {
      if (user !== undefined) users?.release(user);
    });
  }

  /** What a start that failed half-way held: its workspace (and with it the uid), or the uid alone. */
  function giveBack(workspace: string | undefined, user: RunAs | undefined) {
    if (workspace !== undefined) cleanUp(workspace, user);
    else if (user !== undefined) users?.release(user);
  }

  /** FAILED_PRECONDITION, saying how to fix it, when commands cannot run here (no usable bubblewrap). */
  function assertCanRun(): void {
    if (sandbox.kind === "unavailable") throw fail.precondition(sandboxUnavailableMessage(sandbox.problem));
  }

  /** The shell's egress options: the gateway's trust files, and each listener attached as the conversation. */
  function egressFor(binding: () => Conversation["egress"]) {
    const gateway = limits.egress;
    if (gateway === undefined) throw fail.precondition("network_mode: NETWORK_MODE_EGRESS needs the egress gateway, which this server does not run");
    const identity = lazyBinding(binding);
    return { files: gateway.files, attach: (listener: Server) => gateway.attach(identity, listener) };
  }

  /** A fresh workspace for `user`, size-capped: the cap keeps a full workspace off every other disk (the data dir's above all). */
  async function newWorkspace(user: RunAs | undefined): Promise<string> {
    const workspace = limits.workDir.create(user);
    if (limits.resources) await mountWorkspace({ path: workspace, sizeBytes: limits.resources.diskBytes });
    return workspace;
  }

  /** What every shell of this server is opened with, whatever the request. */
  function shellOptions(workspace: string, user: RunAs | undefined) {
    return {
      workspace,
      sandbox: shellSandbox,
      hidden,
      ...(user !== undefined ? { user } : {}),
      ...(limits.resources ? { limits: limits.resources } : {}),
    };
  }

  /** The next conversation's shell, opened with no request in hand: a uid, a workspace, no network, the base environment. */
  const standby = new Standby<StandbyShell>(
    async () => {
      const user = users?.allocate();
      let workspace: string | undefined;
      try {
        workspace = await newWorkspace(user);
        const session = await openShellSession({ ...shellOptions(workspace, user), env: {}, network: "none" });
        return { session, workspace, user };
      } catch (error) {
        giveBack(workspace, user);
        throw error;
      }
    },
    async ({ session, workspace, user }) => {
      await session.close();
      cleanUp(workspace, user);
    },
    ({ session }) => session.pid !== undefined,
  );

  return {
    assertCanRun,

    /** Opens the shell with the secret snapshot; over the tenant's cap is RESOURCE_EXHAUSTED. */
    async start(request: StartRequest): Promise<Conversation> {
      assertCanRun();
      const release = reserve(request.owner.tenant);
      let user: RunAs | undefined;
      let workspace: string | undefined;
      let shell: ShellSession | undefined;
      // Compiled in its own thread while the shell is found or spawned here.
      const compiling = compileMaskSetOffThread(request.secrets.flatMap((s) => s.values));
      // A start that fails first still hears the compile's outcome (no unhandled rejection).
      compiling.catch(() => {});
      try {
        const secretEnv = request.inject === "declared" ? Object.assign({}, ...request.secrets.map((s) => s.env)) : {};
        const env = { ...request.env, ...secretEnv };
        // The gateway serves each shell's listener as this conversation, read once its binding exists
        // (the first connection comes from a command, after the conversation is built).
        let binding: Conversation["egress"];
        const ready = fitsStandby(request, env) ? await standby.take() : undefined;
        if (ready !== undefined) {
          ({ user, workspace, session: shell } = ready);
          if (request.files !== undefined) writeWorkspaceFiles(workspace, request.files, user);
          shell.adopt(env, request.workingDir);
        } else {
          user = users?.allocate();
          workspace = await newWorkspace(user);
          if (request.files !== undefined) writeWorkspaceFiles(workspace, request.files, user);
          const egress = request.networkMode === "egress" ? egressFor(() => binding) : undefined;
          shell = await openShellSession({
            ...shellOptions(workspace, user),
            env,
            network: egress !== undefined ? "egress" : request.network,
            ...(egress !== undefined ? { egress } : {}),
            ...(request.workingDir !== "" ? { workingDir: request.workingDir } : {}),
          });
        }
        const masks = await compiling;
        const path = workspace;
        const owner = user;
        const network: ConversationNetwork = { networkMode: request.networkMode ?? "none", egressAllow: request.egressAllow ?? [], tokenId: request.tokenId ?? "" };
        const conversation = new Conversation(
          request.owner,
          { ...request, id: newConversationId(limits.serverId) },
          shellSandbox.kind,
          shell,
          masks,
          (c) => {
            live.delete(c.id);
            if (c.egress !== undefined) byEgressId.delete(c.egress.egressId);
            cleanUp(path, owner);
            // Its commands are done: nothing to compete with, so the next start need not wait for the delay below.
            if (!closing) standby.prepare();
          },
          network,
          limits.observer,
        );
        binding = conversation.egress;
        live.set(conversation.id, conversation);
        if (conversation.egress?.networkMode === "egress") byEgressId.set(conversation.egress.egressId, conversation);
        // The next start finds its shell ready. Made a little later: the uid scan and the spawn are
        // synchronous, and this conversation's audit record and first command must not wait behind them.
        setTimeout(() => standby.prepare(), limits.standbyDelayMs ?? STANDBY_DELAY_MS).unref();
        return conversation;
      } catch (error) {
        await shell?.close();
        giveBack(workspace, user);
        if (request.workingDir !== "" && /workingDir/.test((error as Error).message)) throw fail.invalid("working_dir: must stay inside the workspace");
        // Egress with --sandbox off: no network namespace to fail closed in.
        if (error instanceof EgressNeedsSandboxError) throw fail.precondition(error.message);
        throw error;
      } finally {
        release();
      }
    },

    /**
     * Finds a conversation the caller may use (the access policy's conversation.use); anything
     * else is NOT_FOUND. A caller without a role (not a token) is its tenant, or its agent when set.
     */
    find(caller: Principal | { tenant: string; agent?: string }, id: string): Conversation {
      const c = live.get(id);
      if (c === undefined) throw fail.notFound(`conversation_id: no live conversation ${id}`);
      const principal: Principal = { role: caller.agent === undefined ? "admin" : "agent", tokenId: "", operator: false, ...caller };
      authorize(principal, "conversation.use", { id, owner: c.owner });
      return c;
    },

    /**
     * The live NETWORK_MODE_EGRESS conversation whose binding has this egress id, for the
     * gateway (not an RPC: no caller to check, so nothing is thrown); undefined once it ended.
     */
    findByEgressId(egressId: string): Conversation | undefined {
      const c = byEgressId.get(egressId);
      return c === undefined || c.isEnded ? undefined : c;
    },

    /** How many conversations are live (all tenants). */
    get size(): number {
      return live.size;
    },

    /** True once closeAll() began: a command that ends from here on was stopped by the shutdown. */
    get closing(): boolean {
      return closing;
    },

    /** Ends every conversation: used on shutdown. */
    async closeAll(): Promise<void> {
      closing = true;
      clearInterval(sweep);
      await Promise.all([standby.close(), ...[...live.values()].map((c) => c.end())]);
      limits.workDir.close();
    },
  };
}

/** The conversation registry. */
export type Conversations = ReturnType<typeof createConversations>;

/**
 * A read-through view of a binding that exists only once the conversation is built: the gateway
 * reads its fields per connection, and a connection before that (impossible: no command has run)
 * finds no substitutions and nothing allowed, so it is refused.
 */
function lazyBinding(get: () => Conversation["egress"]): unknown {
  return new Proxy(
    {},
    {
      get(_target, key) {
        const binding = get();
        if (binding !== undefined) return Reflect.get(binding, key);
        return key === "allow" || key === "substitutions" ? [] : "";
      },
    },
  );
}

/** Variables bash reads when it starts, or keeps for itself: set later (as a standby shell gets them) they would not act as at a spawn. */
const STARTUP_NAMES = /^(BASH.*|ENV|SHELLOPTS|POSIXLY_CORRECT|SHLVL|PWD|OLDPWD|UID|EUID|PPID|GROUPS|IFS|PS4|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|OPTIND|OPTERR|RANDOM|SRANDOM|SECONDS|LINENO|HISTCMD|DIRSTACK|FUNCNAME|EPOCHREALTIME|EPOCHSECONDS|_)$/;

/** After a start, how long the next standby shell waits to be made (bench/README.md, "Conversation start"). */
const STANDBY_DELAY_MS = 30;

/** Past this, exporting into a running shell (which reads its input a byte at a time) costs more than a spawn. */
const STANDBY_ENV_BYTES = 16 * 1024;

/** A standby shell has no network and only the base environment: a start that needs more opens its own shell. */
function fitsStandby(request: StartRequest, env: Record<string, string>): boolean {
  if (request.network || (request.networkMode ?? "none") !== "none") return false;
  let bytes = 0;
  for (const [name, value] of Object.entries(env)) {
    if (STARTUP_NAMES.test(name)) return false;
    bytes += name.length + Buffer.byteLength(value) + 16;
  }
  return bytes <= STANDBY_ENV_BYTES;
}
