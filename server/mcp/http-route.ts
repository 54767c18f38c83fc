// MCP over streamable HTTP at /mcp on the server's own port: bearer token first, then one MCP session per Mcp-Session-Id, bound to that token.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Http2ServerResponse } from "node:http2";
import { createRouterTransport } from "@connectrpc/connect";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { clientsFor, type VeilClient } from "../../client/clients.js";
import type { VeilApp } from "../app.js";
import type { Principal } from "../domain/principal.js";
import { describeError, type Logger } from "../log.js";
import type { HttpRoute } from "../net/http-routes.js";
import type { NodeRequest, NodeResponse } from "../net/listener.js";
import { createHttpSessions, type HttpSession, type HttpSessionLimits } from "./http-sessions.js";
import { createVeilMcpSession } from "./tools.js";

/** The path MCP is served at. */
export const MCP_PATH = "/mcp";

/** What the route needs. */
export interface McpRouteOptions {
  app: VeilApp;
  logger: Logger;
  /** Defaults: 30 minutes idle, 16 sessions per token. */
  limits?: Partial<HttpSessionLimits>;
}

/** The /mcp route, for the server's `httpRoutes`. */
export function createMcpRoute(options: McpRouteOptions): HttpRoute {
  const { app, logger } = options;
  const limits: HttpSessionLimits = { idleMs: 30 * 60_000, maxPerToken: 16, ...options.limits };
  const sessions = createHttpSessions(limits, (session, reason) => logger.log("info", "mcp: session ended", { tokenId: session.tokenId, reason }));
  const sweeper = setInterval(() => void sessions.sweep(), Math.min(60_000, limits.idleMs));
  // The timer must never keep a stopping server alive.
  sweeper.unref();
  // In process, yet through the app's own interceptors (auth, audit, logging, errors), exactly as a network call: no
  // loopback address to find, no TLS or client certificate to present, no port to hold open.
  let client: VeilClient | undefined;
  const veil = () => (client ??= clientsFor(createRouterTransport(app.routes, { router: { interceptors: app.interceptors } })));

  async function serve(req: NodeRequest, res: NodeResponse): Promise<void> {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) return unauthorized(res, "authorization: expected header `authorization: Bearer <token>`");
    let principal: Principal;
    try {
      principal = await app.tokens.authenticate(token);
    } catch (error) {
      return unauthorized(res, (error as Error).message, "invalid_token");
    }
    const id = req.headers["mcp-session-id"];
    let session: HttpSession | undefined;
    if (typeof id === "string") {
      session = sessions.get(id, principal.tokenId);
      // Another token's session answers exactly like an unknown one.
      if (session === undefined) return jsonError(res, 404, -32001, "Session not found");
    } else {
      session = await openSession(principal, token);
    }
    session.inflight++;
    session.lastSeen = Date.now();
    const current = session;
    res.once("close", () => {
      current.inflight--;
      current.lastSeen = Date.now();
    });
    dropConnectionHeaders(res);
    // The SDK types Node's http1 objects, but its adapter (@hono/node-server) also takes the http2 compat ones, which h2c clients get here.
    await session.transport.handleRequest(req as IncomingMessage, res as ServerResponse);
    // A first request that was not a valid initialize leaves a session that never started: nothing to keep.
    if (current.transport.sessionId === undefined) await current.mcp.close();
  }

  async function openSession(principal: Principal, token: string): Promise<HttpSession> {
    const mcp = createVeilMcpSession({
      client: veil(),
      headers: { authorization: `Bearer ${token}` },
      endDirectly: async (conversationId) => app.conversations.find(principal, conversationId).end(),
      log: (msg, fields) => logger.log("info", msg, fields),
    });
    const session: HttpSession = { tokenId: principal.tokenId, mcp, lastSeen: Date.now(), inflight: 0, transport: undefined as never };
    session.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sessionId) => {
        sessions.add(sessionId, session);
        logger.log("info", "mcp: session opened", { tokenId: principal.tokenId, client: mcp.server.server.getClientVersion()?.name?.slice(0, 64) ?? "" });
      },
    });
    // DELETE, transport close or a failed connection: the session and its conversations end.
    mcp.server.server.onclose = () => {
      const sessionId = session.transport.sessionId;
      if (sessionId !== undefined) void sessions.end(sessionId);
    };
    await mcp.server.connect(session.transport);
    return session;
  }

  return {
    matches: (req) => (req.url ?? "").split("?")[0] === MCP_PATH,
    handle(req, res) {
      serve(req, res).catch((error: unknown) => {
        logger.log("error", "mcp: request failed", describeError(error));
        if (!res.headersSent) jsonError(res, 500, -32603, "Internal error");
        else res.end();
      });
    },
  };
}

/**
 * HTTP/2 forbids connection-specific headers (RFC 9113, 8.2.2); the SDK's SSE replies set
 * `Connection: keep-alive`, which Node would drop with a process warning on every stream.
 */
function dropConnectionHeaders(res: NodeResponse) {
  if (!(res instanceof Http2ServerResponse)) return;
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Http2ServerResponse;
  res.writeHead = ((...args: unknown[]) => {
    for (const arg of args) {
      if (typeof arg !== "object" || arg === null || Array.isArray(arg)) continue;
      for (const key of Object.keys(arg)) if (/^(connection|keep-alive)$/i.test(key)) delete (arg as Record<string, unknown>)[key];
    }
    return writeHead(...args);
  }) as typeof res.writeHead;
}

function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}

/** 401 before any MCP processing, with the challenge MCP clients look for. */
function unauthorized(res: NodeResponse, message: string, error?: string) {
  res.setHeader("www-authenticate", `Bearer realm="veil"${error ? `, error="${error}"` : ""}`);
  jsonError(res, 401, -32001, message);
}

function jsonError(res: NodeResponse, status: number, code: number, message: string) {
  res.statusCode = status;
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}
