// Serves HTTP/2 (h2c prior knowledge) and HTTP/1.1 on one cleartext port, and drains it on close.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";

/** The client connection preface every HTTP/2 prior-knowledge client sends first (RFC 9113, 3.4). */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** A request as either Node HTTP server delivers it. */
export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/** A response as either Node HTTP server delivers it. */
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** A request listener that works for both HTTP/1.1 and HTTP/2, such as `connectNodeAdapter(...)`. */
export type RequestHandler = (req: NodeRequest, res: NodeResponse) => void;

/** Where to listen. */
export interface ListenOptions {
  host: string;
  /** 0 picks a free port; read it from `Listener.port`. */
  port: number;
  /**
   * How long a new connection may take to send enough bytes to tell HTTP/2 from HTTP/1.1
   * (default 10 s). Until then neither HTTP server owns the socket, so none of their
   * timeouts apply: without this, silent connections would be held forever.
   */
  prefaceTimeoutMs?: number;
}

/** A bound port serving both HTTP versions. */
export interface Listener {
  /** The bound port (useful with `port: 0`). */
  readonly port: number;
  /** `http://host:port`, ready for a client transport's `baseUrl`. */
  readonly url: string;
  /**
   * Stops accepting, lets in-flight requests finish for up to `drainMs` (default 10 s),
   * then destroys whatever is left. Idle connections are closed at once, so shutdown never
   * waits on clients that merely keep a connection open. Calling it twice returns the same
   * promise.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

/**
 * Which protocol a connection speaks, judged from its first bytes: "h2" once the whole
 * preface arrived, "http1" as soon as the bytes diverge from it, undefined while a prefix of
 * the preface is all there is.
 */
export function detectProtocol(head: Uint8Array): "h2" | "http1" | undefined {
  const n = Math.min(head.length, PREFACE.length);
  for (let i = 0; i < n; i++) {
    if (head[i] !== PREFACE[i]) return "http1";
  }
  return n === PREFACE.length ? "h2" : undefined;
}

/** Binds `host:port` and serves `handler` over HTTP/2 and HTTP/1.1 on that one port. */
export async function listen(handler: RequestHandler, opts: ListenOptions): Promise<Listener> {
  const prefaceTimeoutMs = opts.prefaceTimeoutMs ?? 10_000;
  // Every accepted socket, whatever state it is in; drained means this set is empty.
  const sockets = new Set<net.Socket>();
  // Sockets still being sniffed: no HTTP server owns them yet.
  const undecided = new Set<net.Socket>();
  // HTTP/1.1 sockets and how many of their requests are in flight (0 = idle keep-alive).
  const h1Busy = new Map<net.Socket, number>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let draining = false;
  let onEmpty: (() => void) | undefined;

  const h1 = http.createServer((req, res) => {
    const socket = req.socket;
    h1Busy.set(socket, (h1Busy.get(socket) ?? 0) + 1);
    // Once draining, ask the client not to reuse the connection, so it ends with this reply.
    if (draining) res.setHeader("connection", "close");
    res.once("close", () => {
      const left = (h1Busy.get(socket) ?? 1) - 1;
      h1Busy.set(socket, left);
      if (draining && left === 0) socket.destroySoon();
    });
    handler(req, res);
  });

  const h2 = http2.createServer(handler);
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (draining) session.close();
  });

  // noDelay: small RPC frames must not wait for Nagle; the HTTP servers never accepted
  // these sockets themselves, so their own noDelay defaults do not apply.
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    // Errors before a server owns the socket (resets while sniffing) must not crash the
    // process; afterwards each HTTP server installs its own handler as well.
    socket.on("error", () => socket.destroy());
    socket.once("close", () => {
      sockets.delete(socket);
      undecided.delete(socket);
      h1Busy.delete(socket);
      if (sockets.size === 0) onEmpty?.();
    });
    if (draining) {
      socket.destroy();
      return;
    }
    undecided.add(socket);
    sniff(socket, prefaceTimeoutMs, (protocol) => {
      undecided.delete(socket);
      if (protocol === "h2") {
        h2.emit("connection", socket);
      } else {
        h1Busy.set(socket, 0);
        h1.emit("connection", socket);
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(opts.port, opts.host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });
  const port = (tcp.address() as net.AddressInfo).port;
  const url = `http://${net.isIPv6(opts.host) ? `[${opts.host}]` : opts.host}:${port}`;

  let closing: Promise<void> | undefined;
  async function shutdown(drainMs: number): Promise<void> {
    draining = true;
    const stopped = new Promise<void>((resolve) => tcp.close(() => resolve()));
    const empty = new Promise<void>((resolve) => {
      onEmpty = resolve;
      if (sockets.size === 0) resolve();
    });
    for (const socket of undecided) socket.destroy();
    // GOAWAY: idle sessions end now, busy ones once their streams are done.
    for (const session of sessions) session.close();
    for (const [socket, busy] of h1Busy) if (busy === 0) socket.destroySoon();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, drainMs);
    });
    await Promise.race([empty, deadline]);
    clearTimeout(timer);
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
    await stopped;
  }

  return {
    port,
    url,
    close(options) {
      closing ??= shutdown(options?.drainMs ?? 10_000);
      return closing;
    },
  };
}

/**
 * Reads until the first bytes tell the protocol, then puts them back and calls `decide`.
 * Uses 'readable' + read() + unshift(): unlike a 'data' listener this never switches the
 * socket into flowing mode, so the HTTP server that takes over receives every byte, in order.
 */
function sniff(socket: net.Socket, timeoutMs: number, decide: (protocol: "h2" | "http1") => void): void {
  let head: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => {
    stop();
    socket.destroy();
  }, timeoutMs);
  const onEnd = () => {
    // The peer finished before saying enough to pick a protocol: nothing to serve.
    stop();
    socket.destroy();
  };
  const onReadable = () => {
    for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    }
    const protocol = detectProtocol(head);
    if (protocol === undefined) return;
    stop();
    socket.unshift(head);
    decide(protocol);
  };
  function stop() {
    clearTimeout(timer);
    socket.off("readable", onReadable);
    socket.off("end", onEnd);
  }
  socket.on("readable", onReadable);
  socket.on("end", onEnd);
}
