// The live MCP-over-HTTP sessions: each bound to the token that opened it, ended after idle time, a bounded number per token.
import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { VeilMcpSession } from "./tools.js";

/** One session over streamable HTTP. */
export interface HttpSession {
  /** The token that opened it: only that token may use it. */
  tokenId: string;
  transport: StreamableHTTPServerTransport;
  mcp: VeilMcpSession;
  lastSeen: number;
  /** Requests (POSTs and open GET streams) in flight: a session with one is never idle. */
  inflight: number;
}

/** Limits of the table. */
export interface HttpSessionLimits {
  idleMs: number;
  maxPerToken: number;
}

/** The session table. */
export interface HttpSessions {
  /** The session, only for the token that opened it (another token's looks like none). */
  get(id: string, tokenId: string): HttpSession | undefined;
  /** Adds a session; the token's least recently used one ends if it is over the limit. */
  add(id: string, session: HttpSession): void;
  /** Forgets the session and ends its conversations (idempotent). */
  end(id: string): Promise<void>;
  /** Ends every session idle longer than the limit. */
  sweep(now?: number): Promise<void>;
  readonly size: number;
}

/** An empty table. `onEnd` hears of each session that ends, and why. */
export function createHttpSessions(limits: HttpSessionLimits, onEnd: (session: HttpSession, reason: string) => void): HttpSessions {
  const sessions = new Map<string, HttpSession>();

  async function end(id: string, reason: string): Promise<void> {
    const session = sessions.get(id);
    if (session === undefined) return;
    sessions.delete(id);
    onEnd(session, reason);
    // Conversations first: closing the transport answers any stream still open.
    await session.mcp.close();
    await session.transport.close().catch(() => {});
  }

  return {
    get(id, tokenId) {
      const session = sessions.get(id);
      return session?.tokenId === tokenId ? session : undefined;
    },
    add(id, session) {
      const own = [...sessions].filter(([, s]) => s.tokenId === session.tokenId).sort(([, a], [, b]) => a.lastSeen - b.lastSeen);
      // A host that restarts without DELETE leaves sessions behind: the oldest give way rather than lock the token out.
      for (const [oldId] of own.slice(0, Math.max(0, own.length - limits.maxPerToken + 1))) void end(oldId, "session limit for this token");
      sessions.set(id, session);
    },
    end: (id) => end(id, "closed"),
    async sweep(now = Date.now()) {
      const idle = [...sessions].filter(([, s]) => s.inflight === 0 && now - s.lastSeen > limits.idleMs);
      await Promise.all(idle.map(([id]) => end(id, "idle")));
    },
    get size() {
      return sessions.size;
    },
  };
}
