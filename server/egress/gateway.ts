// The egress gateway (one per server): intercepts each sandbox's HTTP(S), swaps placeholders for their own hosts, refuses the rest.
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { isIP, type Server, type Socket } from "node:net";
import { createSecureContext, rootCertificates, TLSSocket } from "node:tls";
import { describeError, type Logger } from "../log.js";
import { checkLiteral, guardedLookup, PrivateAddressError } from "../domain/address-guard.js";
import { type EgressCa, loadOrCreateCa, type SandboxTrustFiles, writeSandboxTrust } from "./ca.js";
import type { GatewayIdentity } from "./identity.js";
import { LeafCache } from "./leaves.js";
import { type HostRule, matchesRule, normaliseHost, parseHostRule } from "./rules.js";
import {
  findForeign,
  ForeignPlaceholderError,
  forwardHeaders,
  HOP_BY_HOP,
  lengthPreserving,
  Replacer,
  type Routed,
  replaceInText,
  requestBodyPairs,
  responsePairs,
  route,
  splitByHost,
  substituteText,
} from "./substitute.js";

/** One audit record the gateway asks for; never the value, path, query or headers. */
export interface GatewayAuditEvent {
  tenant: string;
  tokenId: string;
  agent: string;
  conversationId: string;
  action: "egress.use" | "egress.denied";
  secretName: string;
  /** `host:port` as the client wrote it. */
  host: string;
  outcome: "OK" | "DENIED";
  reason?: string;
  /** On the closing `egress.use` of a keep-alive connection: how many requests used the secret there. */
  requests?: number;
}

/** What `createGateway` needs. */
export interface GatewayOptions {
  dataDir: string;
  /** This server's work subdir: the sandbox trust files go there (0711, bindable by a conversation's uid). */
  workDirServerDir: string;
  /** `--egress-ca-file`: more CAs to trust upstream, besides the system's. */
  egressCaFile?: string;
  /** `--egress-allow-private`: let the gateway dial loopback and private addresses. */
  allowPrivate: boolean;
  /** `egress.use` is awaited before the value leaves; a rejection refuses the request. */
  audit: (event: GatewayAuditEvent) => Promise<void> | void;
  log: Logger;
}

/** The gateway's public face. */
export interface Gateway {
  /** Serves every connection on `listener` as a client of `identity`'s conversation; the function detaches and closes it. */
  attach(identity: GatewayIdentity, listener: Server): () => void;
  /** Host paths of the trust files a sandbox binds read-only. */
  readonly sandboxFiles: SandboxTrustFiles;
  /** Veil's CA certificate (PEM). */
  readonly caCertPem: string;
  /** Detaches every listener and drops the upstream connections. */
  close(): void;
}

/** Where an intercepted request goes. */
interface Target {
  host: string;
  port: number;
  scheme: "https" | "http";
}

/** Per client connection: the secrets whose `egress.use` is recorded, with their request counts. */
type UseLog = Map<string, { recorded: Promise<void>; requests: number; secret: string; host: string }>;

/** Creates the gateway: loads (or creates) the CA, writes the sandbox trust files, builds the upstream agents. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const ca = await loadOrCreateCa(options.dataDir);
  const files = writeSandboxTrust(ca, options.workDirServerDir);
  return new EgressGateway(ca, files, options);
}

/** A refusal: 403 to the client, an `egress.denied` record, nothing forwarded. */
interface Refusal {
  secretName: string;
  reason: string;
}

class EgressGateway implements Gateway {
  readonly sandboxFiles: SandboxTrustFiles;
  readonly caCertPem: string;
  readonly leaves: LeafCache;
  readonly httpsAgent: https.Agent;
  readonly httpAgent: http.Agent;
  private readonly detachers = new Set<() => void>();

  constructor(
    ca: EgressCa,
    files: SandboxTrustFiles,
    readonly options: GatewayOptions,
  ) {
    this.sandboxFiles = files;
    this.caCertPem = ca.certPem;
    this.leaves = new LeafCache(ca);
    const extra = options.egressCaFile !== undefined ? [readFileSync(options.egressCaFile, "utf8")] : [];
    // One prebuilt trust context: an agent given `ca:` puts the whole bundle into every pool key and
    // parses ~140 roots per connection (4x slower). Verification still happens against it.
    const secureContext = createSecureContext({ ca: [...rootCertificates, ...extra] });
    const lookup = guardedLookup(options.allowPrivate);
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, secureContext, lookup });
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64, lookup });
  }

  attach(identity: GatewayIdentity, listener: Server): () => void {
    const attachment = new Attachment(this, identity);
    const onConnection = (socket: Socket) => attachment.accept(socket);
    listener.on("connection", onConnection);
    let done = false;
    const detach = () => {
      if (done) return;
      done = true;
      this.detachers.delete(detach);
      listener.off("connection", onConnection);
      listener.close();
      attachment.close();
    };
    this.detachers.add(detach);
    return detach;
  }

  close(): void {
    for (const detach of [...this.detachers]) detach();
    this.httpsAgent.destroy();
    this.httpAgent.destroy();
  }

  /** Records a refusal without waiting (nothing was forwarded); a failing sink is logged, not fatal. */
  denied(identity: GatewayIdentity, host: string, refusal: Refusal): void {
    this.record(this.event(identity, "egress.denied", refusal.secretName, host, refusal.reason));
  }

  /** Writes an event nobody waits for. */
  record(event: GatewayAuditEvent): void {
    Promise.resolve()
      .then(() => this.options.audit(event))
      .catch((error: unknown) => this.options.log.log("error", "egress audit failed", { action: event.action, ...describeError(error) }));
  }

  event(identity: GatewayIdentity, action: GatewayAuditEvent["action"], secretName: string, host: string, reason?: string): GatewayAuditEvent {
    const { tenant, tokenId, agent, conversationId } = identity;
    return { tenant, tokenId, agent, conversationId, action, secretName, host, outcome: action === "egress.use" ? "OK" : "DENIED", ...(reason !== undefined ? { reason } : {}) };
  }
}

/** `host:port` for audit and messages (IPv6 in brackets). */
function authority(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** Splits a CONNECT authority into a normalised host and a port; undefined when it is not one. */
function splitAuthority(text: string): { host: string; port: number } | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]/\s]+):(\d{1,5})$/.exec(text);
  if (m === null) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: normaliseHost(m[1]!), port } : undefined;
}

/** Writes a refusal on a raw socket (CONNECT, before any TLS) and closes it. */
function rawRefusal(socket: Socket, status: string, reason: string): void {
  const body = `veil egress: ${reason}\n`;
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Answers a request with a short plain-text reason. */
function reply(res: http.ServerResponse, status: number, reason: string, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `veil egress: ${reason}\n`;
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body), ...(close ? { connection: "close" } : {}) });
  res.end(body);
}

/** One sandbox listener: its conversation's rules, and the HTTP servers parsing its connections. */
class Attachment {
  // Read from the identity on first use, not at attach: a conversation's first shell is attached
  // while the conversation (and so its binding) is still being built; its commands come after.
  private rules: { subs: Routed[]; allow: HostRule[] } | undefined;
  private readonly outer = http.createServer({ keepAliveTimeout: 60_000 });
  private readonly inner = http.createServer({ keepAliveTimeout: 60_000 });
  private readonly sockets = new Set<Socket>();
  private readonly targets = new WeakMap<Socket, Target>();
  private readonly uses = new WeakMap<Socket, UseLog>();

  private get subs(): Routed[] {
    return this.routes().subs;
  }

  private get allow(): HostRule[] {
    return this.routes().allow;
  }

  private routes(): { subs: Routed[]; allow: HostRule[] } {
    this.rules ??= {
      subs: route(this.identity.substitutions),
      allow: this.identity.allow.map(parseHostRule).filter((r): r is HostRule => typeof r !== "string"),
    };
    return this.rules;
  }

  constructor(
    private readonly gw: EgressGateway,
    private readonly identity: GatewayIdentity,
  ) {
    this.outer.on("connect", (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.connect(req, socket, head));
    this.outer.on("request", (req, res) => this.plain(req, res));
    this.outer.on("checkContinue", (req, res) => this.plain(req, res));
    this.inner.on("request", (req, res) => this.intercepted(req, res));
    this.inner.on("checkContinue", (req, res) => this.intercepted(req, res));
    for (const server of [this.outer, this.inner]) {
      server.on("upgrade", (_req, socket: Socket) => rawRefusal(socket, "501 Not Implemented", "protocol upgrades (WebSocket) are not supported"));
      server.on("clientError", (_error, socket: Socket) => socket.destroy());
    }
  }

  accept(socket: Socket): void {
    this.sockets.add(socket);
    // Small request/response pairs on keep-alive: Nagle plus delayed ACKs would add ~40 ms each.
    socket.setNoDelay(true);
    // A client resetting its connection is normal; without a listener it would crash the server.
    socket.on("error", () => socket.destroy());
    socket.once("close", () => this.sockets.delete(socket));
    this.outer.emit("connection", socket);
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Whether `egress_allow` or any secret's own hosts admit `host:port`. */
  private allowed(host: string, port: number): boolean {
    return this.allow.some((r) => matchesRule(r, host, port)) || this.subs.some((s) => s.rules.some((r) => matchesRule(r, host, port)));
  }

  /** Why a destination is refused before anything is parsed, or undefined. */
  private refuseDestination(host: string, port: number): string | undefined {
    if (!this.allowed(host, port)) return `${authority(host, port)} is not allowed for this conversation`;
    const literal = checkLiteral(host, this.gw.options.allowPrivate);
    return literal === undefined ? undefined : `${literal}: refused (the server runs without --egress-allow-private)`;
  }

  /** CONNECT: refuse or intercept. Every tunnel is TLS-terminated, so a placeholder can be refused on any host. */
  private connect(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    const target = splitAuthority(req.url ?? "");
    if (target === undefined) {
      rawRefusal(socket, "400 Bad Request", "CONNECT needs host:port");
      return;
    }
    const refused = this.refuseDestination(target.host, target.port);
    if (refused !== undefined) {
      this.gw.denied(this.identity, authority(target.host, target.port), { secretName: "", reason: refused });
      rawRefusal(socket, "403 Forbidden", refused);
      return;
    }
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) socket.unshift(head);
    socket.pause();
    // The leaf is chosen by the CONNECT authority, never the SNI: IP-literal clients send none.
    this.gw.leaves.context(target.host).then(
      (secureContext) => {
        if (socket.destroyed) return;
        const tlsSocket = new TLSSocket(socket, { isServer: true, ALPNProtocols: ["http/1.1"], secureContext });
        tlsSocket.on("error", () => socket.destroy());
        this.targets.set(tlsSocket, { ...target, scheme: "https" });
        this.inner.emit("connection", tlsSocket);
      },
      (error: unknown) => {
        this.gw.options.log.log("error", "egress leaf certificate failed", describeError(error));
        socket.destroy();
      },
    );
  }

  /** A decrypted request from inside a tunnel. */
  private intercepted(req: http.IncomingMessage, res: http.ServerResponse): void {
    const target = this.targets.get(req.socket as Socket);
    if (target === undefined) {
      reply(res, 500, "no tunnel target", true);
      return;
    }
    // Origin-form is normal; a client repeating absolute-form inside the tunnel gets its path kept, not its host.
    const path = (req.url ?? "/").startsWith("/") ? (req.url ?? "/") : safePath(req.url ?? "/");
    void this.forward(req, res, target, path);
  }

  /** Plain HTTP through the proxy: absolute-form `GET http://host/path`. */
  private plain(req: http.IncomingMessage, res: http.ServerResponse): void {
    let url: URL;
    try {
      url = new URL(req.url ?? "");
    } catch {
      reply(res, 400, "a proxy request needs an absolute http:// URL");
      return;
    }
    if (url.protocol !== "http:") {
      reply(res, 400, "only http:// URLs are proxied in the clear; use CONNECT for https");
      return;
    }
    const target: Target = { host: normaliseHost(url.hostname), port: Number(url.port || 80), scheme: "http" };
    const refused = this.refuseDestination(target.host, target.port);
    if (refused !== undefined) {
      this.gw.denied(this.identity, authority(target.host, target.port), { secretName: "", reason: refused });
      reply(res, 403, refused);
      return;
    }
    void this.forward(req, res, target, `${url.pathname}${url.search}`);
  }

  /** Policy, substitution, audit, then the upstream request; every refusal is a 403 that forwards nothing. */
  private async forward(req: http.IncomingMessage, res: http.ServerResponse, target: Target, rawPath: string): Promise<void> {
    const host = authority(target.host, target.port);
    const { mine, foreign } = splitByHost(this.subs, target.host, target.port);
    const bad = findForeign([rawPath, ...req.rawHeaders], foreign);
    if (bad !== undefined) return this.refuse(res, host, bad.secret);
    const used = new Set<string>();
    const path = substituteText(rawPath, mine, used);
    const headers = forwardHeaders(req.rawHeaders, (v) => substituteText(v, mine, used));
    const defaultPort = target.scheme === "https" ? 443 : 80;
    // Rebuilt from the authority the policy judged: a spoofed Host must not reach another virtual host.
    headers.host = target.port === defaultPort ? authority(target.host, target.port).replace(/:\d+$/, "") : host;
    const encoded = headers["content-encoding"] !== undefined;
    const bodyPairs = requestBodyPairs(encoded ? [] : mine, foreign);
    const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
    if (hasBody && bodyPairs.length > 0 && !lengthPreserving(bodyPairs)) delete headers["content-length"];
    if (hasBody && headers["content-length"] === undefined) headers["transfer-encoding"] = "chunked";
    // An echo of the value can be swapped back only in an uncompressed response.
    if (used.size > 0 || bodyPairs.some((p) => p.secret !== undefined)) headers["accept-encoding"] = "identity";
    try {
      await this.recordUse(req.socket as Socket, [...used], host);
    } catch (error) {
      this.gw.options.log.log("error", "egress audit failed; request not forwarded", describeError(error));
      return reply(res, 503, "the audit log is unavailable; nothing was sent", true);
    }
    const body = hasBody && bodyPairs.length > 0 ? new Replacer(bodyPairs, (secrets) => this.recordUse(req.socket as Socket, secrets, host)) : undefined;
    this.dial(req, res, target, { path, headers }, body);
  }

  /** Sends the request upstream and relays the response, values swapped back for placeholders. */
  private dial(req: http.IncomingMessage, res: http.ServerResponse, target: Target, request: { path: string; headers: http.OutgoingHttpHeaders }, body: Replacer | undefined): void {
    const host = authority(target.host, target.port);
    const https_ = target.scheme === "https";
    const options: https.RequestOptions = {
      host: target.host,
      port: target.port,
      method: req.method ?? "GET",
      path: request.path,
      headers: request.headers,
      agent: https_ ? this.gw.httpsAgent : this.gw.httpAgent,
      ...(https_ && isIP(target.host) === 0 ? { servername: target.host } : {}),
    };
    let settled = false;
    const fail = (status: number, reason: string, secretName?: string) => {
      if (settled) return;
      settled = true;
      upstream.destroy();
      if (secretName !== undefined) this.gw.denied(this.identity, host, { secretName, reason });
      reply(res, status, reason, true);
    };
    const upstream = (https_ ? https : http).request(options, (upRes) => this.relay(upRes, res));
    upstream.on("continue", () => res.writeContinue());
    upstream.on("error", (error: NodeJS.ErrnoException) => {
      if (error instanceof PrivateAddressError) return fail(403, `${error.message}: refused (the server runs without --egress-allow-private)`, "");
      fail(502, `upstream ${host} failed: ${error.code ?? error.name}`);
    });
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (body === undefined) {
      req.pipe(upstream);
      return;
    }
    body.on("error", (error) => {
      if (error instanceof ForeignPlaceholderError) return fail(403, `${error.secret} may only be sent to its own hosts; refused for ${host}`, error.secret);
      fail(503, "the audit log is unavailable; nothing more was sent");
    });
    req.pipe(body).pipe(upstream);
  }

  /** The upstream's response to the sandbox: hop-by-hop stripped, values back to placeholders, streamed at once. */
  private relay(upRes: http.IncomingMessage, res: http.ServerResponse): void {
    const pairs = responsePairs(this.subs);
    const headers = forwardHeaders(upRes.rawHeaders, (v) => replaceInText(v, pairs), HOP_BY_HOP);
    if (!lengthPreserving(pairs)) delete headers["content-length"];
    res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, headers);
    // Headers now, not with the first body chunk: a server-sent event stream must start at once.
    res.flushHeaders();
    upRes.on("error", () => res.destroy());
    if (pairs.length === 0) upRes.pipe(res);
    else upRes.pipe(new Replacer(pairs)).pipe(res);
  }

  /** 403 for a placeholder sent to a host its secret does not belong to. */
  private refuse(res: http.ServerResponse, host: string, secretName: string): void {
    const reason = `${secretName} may only be sent to its own hosts; refused for ${host}`;
    this.gw.denied(this.identity, host, { secretName, reason });
    reply(res, 403, reason);
  }

  /**
   * `egress.use`, awaited once per (client connection, secret, host) before the value first leaves:
   * later requests on a keep-alive connection are counted and summed up in one record when it closes,
   * so a durable audit write stays off the hot path.
   */
  private recordUse(socket: Socket, secrets: readonly string[], host: string): Promise<void> | undefined {
    if (secrets.length === 0) return undefined;
    const log: UseLog = this.uses.get(socket) ?? new Map();
    if (!this.uses.has(socket)) {
      this.uses.set(socket, log);
      socket.once("close", () => this.closeUses(log));
    }
    const waits: Promise<void>[] = [];
    for (const secret of secrets) {
      const key = `${secret}\0${host}`;
      const entry = log.get(key);
      if (entry !== undefined) {
        entry.requests++;
        waits.push(entry.recorded);
        continue;
      }
      const recorded = Promise.resolve().then(() => this.gw.options.audit(this.gw.event(this.identity, "egress.use", secret, host)));
      // A failed record must be retried by the next request, not remembered as done.
      recorded.catch(() => log.delete(key));
      log.set(key, { recorded, requests: 1, secret, host });
      waits.push(recorded);
    }
    return Promise.all(waits).then(() => undefined);
  }

  private closeUses(log: UseLog): void {
    for (const { requests, secret, host } of log.values()) {
      if (requests < 2) continue;
      this.gw.record({ ...this.gw.event(this.identity, "egress.use", secret, host), requests });
    }
  }
}

/** The path and query of an absolute URL (a client sending absolute-form inside a tunnel). */
function safePath(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  } catch {
    return "/";
  }
}
