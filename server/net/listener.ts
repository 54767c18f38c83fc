// Serves HTTP/2 and HTTP/1.1 on one port (cleartext by sniffing the preface, or TLS by ALPN), and drains it on close.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { constants } from "node:crypto";
import * as tls from "node:tls";

/** The client connection preface every HTTP/2 prior-knowledge client sends first (RFC 9113, 3.4). */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** A request as either Node HTTP server delivers it. */
export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/** A response as either Node HTTP server delivers it. */
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** A request listener that works for both HTTP/1.1 and HTTP/2, such as `connectNodeAdapter(...)`. */
export type RequestHandler = (req: NodeRequest, res: NodeResponse) => void;

/**
 * Offered every HTTP/2 stream before Node's compatibility layer wraps it: returns true when it
 * serves the stream itself on the stream API, false to leave it (untouched, nothing read) to the
 * request handler. A stream it took and read from can still be given to the request handler with
 * `handOver`: the bytes it read come first in the request's body, then whatever is left unread.
 */
export type StreamTaker = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, handOver: HandOver) => boolean;

/** Gives a stream to the request handler as Node would have, with `read` (and the end, if `ended`) put back in front. */
export type HandOver = (read: readonly Buffer[], ended: boolean) => void;

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
  /** Serve TLS (h2 and HTTP/1.1 by ALPN) instead of cleartext. */
  tls?: TlsMaterial;
  /** Serves some HTTP/2 streams before the handler sees them (the lean gRPC path); under mutual TLS only those of verified connections. */
  streams?: StreamTaker;
}

/** The port's certificate (PEM), and for mutual TLS the CA client certificates must chain to. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** Set: clients are asked for a certificate; one that does not verify is refused after the handshake. */
  clientCa?: Buffer;
  /**
   * Under mutual TLS, the requests a client without a certificate may still make (health and
   * metrics for load balancers and scrapers); every other is answered 401 unread.
   */
  anonymous?: (req: NodeRequest) => boolean;
}

/** A bound port serving both HTTP versions. */
export interface Listener {
  /** The bound port (useful with `port: 0`). */
  readonly port: number;
  /** `http://host:port` (`https://` with TLS), ready for a client transport's `baseUrl`. */
  readonly url: string;
  /**
   * Stops accepting, lets in-flight requests finish for up to `drainMs` (default 10 s),
   * then destroys whatever is left. Idle connections are closed at once, so shutdown never
   * waits on clients that merely keep a connection open. Calling it twice returns the same
   * promise.
   */
  close(options?: { drainMs?: number }): Promise<void>;
  /**
   * TLS only: serves new connections with another certificate pair (and client CA); open
   * connections keep theirs. Throws, keeping the current pair, if the new one does not load.
   */
  reloadTls?(material: Pick<TlsMaterial, "cert" | "key" | "clientCa">): void;
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

/** Binds `host:port` and serves `handler` over HTTP/2 and HTTP/1.1 on that one port (TLS with ALPN when `opts.tls` is set). */
export async function listen(handler: RequestHandler, opts: ListenOptions): Promise<Listener> {
  if (opts.tls !== undefined) return listenTls(handler, opts, opts.tls);
  const prefaceTimeoutMs = opts.prefaceTimeoutMs ?? 10_000;
  const track = createTracker();
  // Sockets still being sniffed: no HTTP server owns them yet.
  const undecided = new Set<net.Socket>();
  const h1 = http.createServer(track.http1(handler));
  const h2 = http2.createServer(handler);
  h2.on("session", track.session);
  if (opts.streams !== undefined) offerStreams(h2, opts.streams, () => true);

  // noDelay: small RPC frames must not wait for Nagle; the HTTP servers never accepted
  // these sockets themselves, so their own noDelay defaults do not apply.
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    socket.once("close", () => undecided.delete(socket));
    if (!track.socket(socket)) return;
    undecided.add(socket);
    sniff(socket, prefaceTimeoutMs, (protocol) => {
      undecided.delete(socket);
      if (protocol === "h2") {
        h2.emit("connection", socket);
      } else {
        track.idleHttp1(socket);
        h1.emit("connection", socket);
      }
    });
  });
  const port = await bind(tcp, opts);
  return {
    port,
    url: urlOf("http", opts.host, port),
    close: once((options) =>
      track.shutdown(options?.drainMs ?? 10_000, tcp, () => {
        for (const socket of undecided) socket.destroy();
      }),
    ),
  };
}

/** TLS on the port: `http2.createSecureServer` picks h2 or HTTP/1.1 by ALPN, so no sniffing. */
async function listenTls(handler: RequestHandler, opts: ListenOptions, material: TlsMaterial): Promise<Listener> {
  const track = createTracker();
  const mutual = material.clientCa !== undefined;
  // Connections (HTTP/1.1 sockets, HTTP/2 sessions) whose client certificate verified: judged once each.
  const verified = new WeakSet<object>();
  const server = http2.createSecureServer({
    ...secureOptions(material),
    allowHTTP1: true,
    // A silent client would otherwise hold a socket (and the drain) for the default 120 s.
    handshakeTimeout: opts.prefaceTimeoutMs ?? 10_000,
  });
  const served = track.http1(handler);
  server.on("request", (req: NodeRequest, res: NodeResponse) => {
    const connection = "stream" in req ? req.stream.session : req.socket;
    if (mutual && (connection === undefined || !verified.has(connection)) && !(material.anonymous?.(req) ?? false)) return refuseAnonymous(req, res);
    if (req.httpVersionMajor === 2) handler(req, res);
    else served(req, res);
  });
  server.on("session", (session: http2.ServerHttp2Session) => {
    if (mutual && session.socket !== undefined && hasVerifiedCertificate(session.socket as tls.TLSSocket)) verified.add(session);
    track.session(session);
  });
  server.on("connection", (socket: net.Socket) => {
    socket.setNoDelay(true);
    track.socket(socket);
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    // A certificate that does not verify is refused before any request; no certificate at all
    // may still reach the anonymous routes (health and metrics).
    if (mutual && !socket.authorized && socket.getPeerCertificate().raw !== undefined) {
      socket.destroy();
      return;
    }
    if (mutual && hasVerifiedCertificate(socket)) verified.add(socket);
    if (socket.alpnProtocol !== "h2") track.idleHttp1(socket);
  });
  // Handshake failures (wrong CA, plain HTTP on the TLS port) are the client's problem, not the process's.
  server.on("tlsClientError", () => {});
  // Streams of a connection without a verified certificate go to the request listener, which refuses them.
  if (opts.streams !== undefined) offerStreams(server, opts.streams, (stream) => !mutual || verified.has(stream.session as object));
  const port = await bind(server, opts);
  return {
    port,
    url: urlOf("https", opts.host, port),
    close: once((options) => track.shutdown(options?.drainMs ?? 10_000, server, () => {})),
    reloadTls(next) {
      // Built first: a bad pair throws here and the served one stays.
      tls.createSecureContext(secureOptions({ ...material, ...next }));
      server.setSecureContext(secureOptions({ ...material, ...next }));
    },
  };
}

/**
 * Puts `take` in front of the listener Node's compatibility layer installed for 'stream' events
 * (it makes an Http2ServerRequest and Http2ServerResponse per stream, with eight listeners and a
 * socket proxy, then emits 'request'). Why: on a unary call that wrapping cost more than the rest of
 * the HTTP/2 handling (bench/README.md). What `take` declines reaches Node's listener unchanged.
 */
function offerStreams(server: http2.Http2Server | http2.Http2SecureServer, take: StreamTaker, may: (stream: http2.ServerHttp2Stream) => boolean): void {
  const compat = server.listeners("stream") as ((...args: unknown[]) => void)[];
  server.removeAllListeners("stream");
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    const handOver: HandOver = (read, ended) => {
      // What Node's listener does for a request that is neither CONNECT nor expects anything (take declines those).
      const req = new http2.Http2ServerRequest(stream, headers, {}, rawHeaders);
      const res = new http2.Http2ServerResponse(stream);
      for (const chunk of read) req.push(chunk);
      if (ended) req.push(null);
      server.emit("request", req, res);
    };
    if (may(stream) && take(stream, headers, handOver)) return;
    for (const listener of compat) listener(stream, headers, flags, rawHeaders);
  });
}

/** The options of a secure context: the pair, and under mutual TLS the CA a client certificate must chain to. */
function secureOptions(material: TlsMaterial): tls.SecureContextOptions & tls.TlsOptions {
  return {
    cert: material.cert,
    key: material.key,
    // rejectUnauthorized false: clients without a certificate still reach /healthz and /metrics; the
    // request handler refuses them everything else, and a certificate that fails is dropped after the handshake.
    // No session tickets: every connection proves its certificate afresh.
    ...(material.clientCa !== undefined ? { ca: material.clientCa, requestCert: true, rejectUnauthorized: false, secureOptions: constants.SSL_OP_NO_TICKET } : {}),
  };
}

/**
 * Whether the connection presented a client certificate that verified. `authorized` alone is not
 * enough: Node reports a resumed TLS 1.3 session as authorized even when it never carried a
 * certificate, so a client without one could resume its way past the check (resumption is off
 * under mutual TLS as well, see secureOptions).
 */
function hasVerifiedCertificate(socket: tls.TLSSocket): boolean {
  return socket.authorized && socket.getPeerCertificate().raw !== undefined;
}

/** 401 without touching the handler: gRPC and Connect clients read it as UNAUTHENTICATED. */
function refuseAnonymous(req: NodeRequest, res: NodeResponse): void {
  req.resume();
  if (req.httpVersionMajor !== 2) res.setHeader("connection", "close");
  res.writeHead(401, { "content-type": "text/plain; charset=utf-8" });
  res.end("a client certificate is required (only /healthz and /metrics are served without one)\n");
}

/**
 * What a listener tracks to drain: every accepted socket, HTTP/1.1 sockets with their
 * requests in flight (0 = idle keep-alive), and HTTP/2 sessions.
 */
function createTracker() {
  const sockets = new Set<net.Socket>();
  const h1Busy = new Map<net.Socket, number>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let draining = false;
  let onEmpty: (() => void) | undefined;
  return {
    /** A new TCP connection; false (and destroyed) once draining. */
    socket(socket: net.Socket): boolean {
      sockets.add(socket);
      // Errors before a server owns the socket (resets while sniffing) must not crash the
      // process; afterwards each HTTP server installs its own handler as well.
      socket.on("error", () => socket.destroy());
      socket.once("close", () => {
        sockets.delete(socket);
        if (sockets.size === 0) onEmpty?.();
      });
      if (draining) socket.destroy();
      return !draining;
    },
    /** A connection that speaks HTTP/1.1 and has no request yet. */
    idleHttp1(socket: net.Socket): void {
      h1Busy.set(socket, 0);
      socket.once("close", () => h1Busy.delete(socket));
    },
    session(session: http2.ServerHttp2Session): void {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
      if (draining) session.close();
    },
    /** Wraps the handler for HTTP/1.1 requests: counts them per socket, and ends idle sockets once draining. */
    http1(handler: RequestHandler): RequestHandler {
      return (req, res) => {
        const socket = req.socket;
        h1Busy.set(socket, (h1Busy.get(socket) ?? 0) + 1);
        // Once draining, ask the client not to reuse the connection, so it ends with this reply.
        if (draining) res.setHeader("connection", "close");
        res.once("close", () => {
          const left = (h1Busy.get(socket) ?? 1) - 1;
          if (h1Busy.has(socket)) h1Busy.set(socket, left);
          if (draining && left === 0) socket.destroySoon();
        });
        handler(req, res);
      };
    },
    /** Stops accepting, drains for up to `drainMs`, then destroys what is left. */
    async shutdown(drainMs: number, server: net.Server, abandon: () => void): Promise<void> {
      draining = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      const empty = new Promise<void>((resolve) => {
        onEmpty = resolve;
        if (sockets.size === 0) resolve();
      });
      abandon();
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
    },
  };
}

/** Listens and resolves to the bound port. */
async function bind(server: net.Server, opts: ListenOptions): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as net.AddressInfo).port;
}

function urlOf(scheme: "http" | "https", host: string, port: number): string {
  return `${scheme}://${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** Calling it twice returns the first call's promise. */
function once<A>(fn: (arg: A) => Promise<void>): (arg: A) => Promise<void> {
  let result: Promise<void> | undefined;
  return (arg) => {
    result ??= fn(arg);
    return result;
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
