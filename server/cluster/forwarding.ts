// Forwarding: conversation calls that reach a server which does not run the conversation go to the one that does, with the caller's own credentials.
import { type CallOptions, type Client, Code, ConnectError, createClient, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { nodeTransport, type VeilTlsOptions } from "../../client/node-transport.js";
import { ConversationService } from "../../gen/veil/v1/conversation_pb.js";
import { serverOfConversation } from "../domain/conversation-id.js";
import type { Logger } from "../log.js";
import { REQUEST_ID_HEADER } from "../net/request-id.js";
import { auditTrail, CLIENT_HEADER } from "../rpc/audit.js";
import { PEER_HEADER, type PeerProof, PeerProofError } from "./peer-proof.js";
import type { Registry } from "./registry.js";

/** What forwarding needs. */
export interface ForwardingDeps {
  selfId: string;
  registry: Registry;
  proof: PeerProof;
  logger: Logger;
  /** TLS for https:// peers (see peer-tls.ts). */
  tls?: VeilTlsOptions;
}

type Conversations = ServiceImpl<typeof ConversationService>;
/** The call goes to the owner with these options, or (undefined) is served here. */
type Route = { owner: string; url: string; client: Client<typeof ConversationService>; options: CallOptions } | undefined;

/** The caller's headers a forwarded call carries: its token (the owner authenticates it itself), request id and client label. */
const PASSED_HEADERS = ["authorization", REQUEST_ID_HEADER, CLIENT_HEADER];

/** Wraps the ConversationService so calls naming another server's conversation are served by that server. */
export function withForwarding(impl: Conversations, deps: ForwardingDeps): Conversations {
  const clients = new Map<string, Client<typeof ConversationService>>();
  // One client (one HTTP/2 connection) per peer, reused by every forwarded call.
  const clientFor = (url: string) => {
    let client = clients.get(url);
    if (client === undefined) {
      client = createClient(ConversationService, nodeTransport({ baseUrl: url, interceptors: [], protocol: "grpc", ...(deps.tls !== undefined ? { tls: deps.tls } : {}) }));
      clients.set(url, client);
    }
    return client;
  };

  /** Where `method`'s call for `conversationId` is served; a verified forwarded call always here (never forwarded twice). */
  async function route(method: string, conversationId: string, ctx: HandlerContext): Promise<Route> {
    const call = { procedure: `${ConversationService.typeName}/${method}`, conversationId };
    const proof = ctx.requestHeader.get(PEER_HEADER);
    if (proof !== null) {
      acceptForwarded(deps, proof, call, ctx);
      return undefined;
    }
    const owner = serverOfConversation(conversationId);
    if (owner === undefined || owner === deps.selfId) return undefined;
    const entry = await deps.registry.lookup(owner);
    if (entry === undefined) throw ownerGone(conversationId, owner);
    const headers = new Headers();
    for (const name of PASSED_HEADERS) {
      const value = ctx.requestHeader.get(name);
      if (value !== null) headers.set(name, value);
    }
    headers.set(PEER_HEADER, deps.proof.sign(call));
    const timeoutMs = ctx.timeoutMs();
    // The caller's cancellation and deadline are the forwarded call's: cancelling here cancels there.
    const options: CallOptions = { headers, signal: ctx.signal, ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
    auditTrail(ctx).tag(`forwarded_to=${owner}`);
    return { owner, url: entry.url, client: clientFor(entry.url), options };
  }

  /** A failure of the hop itself (not an answer of the owner) says which server did not answer. */
  async function hopFailed(error: unknown, conversationId: string, to: NonNullable<Route>): Promise<unknown> {
    const e = ConnectError.from(error);
    // The owner echoes a request id on every answer; without one the owner never answered.
    if (e.metadata.has(REQUEST_ID_HEADER) || e.code === Code.Canceled || e.code === Code.DeadlineExceeded) return error;
    if ((await deps.registry.lookup(to.owner)) === undefined) return ownerGone(conversationId, to.owner);
    return new ConnectError(
      `conversation ${conversationId} runs on server ${to.owner} (${to.url}), which did not answer (${e.rawMessage}); if it died, its conversations ended with it`,
      Code.Unavailable,
      undefined,
      undefined,
      error,
    );
  }

  async function unary<Req extends { conversationId: string }, Res>(method: string, req: Req, ctx: HandlerContext, local: () => Promise<Res>, remote: (r: NonNullable<Route>) => Promise<Res>) {
    const to = await route(method, req.conversationId, ctx);
    if (to === undefined) return local();
    try {
      return await remote(to);
    } catch (error) {
      throw await hopFailed(error, req.conversationId, to);
    }
  }

  return {
    ...impl,
    async *runCommand(req, ctx) {
      const to = await route("RunCommand", req.conversationId, ctx);
      if (to === undefined) {
        yield* impl.runCommand!(req, ctx);
        return;
      }
      // On record before the owner runs anything, like a local RunCommand.
      await auditTrail(ctx).commit();
      try {
        yield* to.client.runCommand(req, to.options);
      } catch (error) {
        throw await hopFailed(error, req.conversationId, to);
      }
    },
    sendInput: (req, ctx) =>
      unary("SendInput", req, ctx, async () => impl.sendInput!(req, ctx), (to) => to.client.sendInput(req, to.options)),
    signalCommand: (req, ctx) =>
      unary("SignalCommand", req, ctx, async () => impl.signalCommand!(req, ctx), (to) => to.client.signalCommand(req, to.options)),
    endConversation: (req, ctx) =>
      unary("EndConversation", req, ctx, async () => impl.endConversation!(req, ctx), (to) => to.client.endConversation(req, to.options)),
  };
}

/** The owner is not in the registry: it stopped or died, and its conversations with it. */
function ownerGone(conversationId: string, owner: string): ConnectError {
  return new ConnectError(
    `conversation ${conversationId} ran on server ${owner}, which is no longer serving; its conversations ended with it: start a new one`,
    Code.Unavailable,
  );
}

/**
 * A call another server forwarded: its proof must verify (a client cannot pose as a server),
 * and the trail and log say which server it came through. The caller was authenticated here
 * by its own token, as on any call: the proof adds no authority.
 */
function acceptForwarded(deps: ForwardingDeps, header: string, call: { procedure: string; conversationId: string }, ctx: HandlerContext): void {
  let from: string;
  try {
    from = deps.proof.verify(header, call);
  } catch (error) {
    const reason = error instanceof PeerProofError ? error.message : "invalid";
    throw new ConnectError(`${PEER_HEADER}: the peer proof ${reason === "does not verify" ? "does not verify" : `is ${reason}`}; only Veil servers sharing this store's master key send it`, Code.Unauthenticated);
  }
  deps.logger.log("info", "forwarded call", { requestId: ctx.requestHeader.get(REQUEST_ID_HEADER) ?? "", procedure: call.procedure, conversationId: call.conversationId, forwardedBy: from });
  auditTrail(ctx).tag(`forwarded_by=${from}`);
}
