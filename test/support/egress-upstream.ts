// A loopback HTTPS upstream with its own CA (on 127.0.0.1 and 127.0.0.2, one port), plus a plain HTTP one, recording what they receive.
import "reflect-metadata"; // @peculiar/x509 2.x needs a Reflect polyfill before it loads
import { webcrypto } from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { connect as netConnect } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import * as x509 from "@peculiar/x509";
import { createCa, SIGNING, serialNumber, toPem } from "../../server/egress/ca.js";

/** One request as the upstream saw it. */
export interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  authorization: string | undefined;
  contentLength: string | undefined;
  transferEncoding: string | undefined;
  expect: string | undefined;
  body: string;
  localAddress: string;
  remotePort: number;
}

/** The running upstreams. */
export interface Upstream {
  /** HTTPS port, on 127.0.0.1 and 127.0.0.2. */
  port: number;
  /** Plain HTTP port on 127.0.0.1. */
  httpPort: number;
  /** The upstream's own CA (PEM): what `--egress-ca-file` holds. */
  caPem: string;
  seen: Seen[];
  close(): Promise<void>;
}

/** Routes: `/echo` (JSON of the Authorization header and body, plus `x-echo-auth`), `/stream` (5 ticks 200 ms apart), `/bench`. */
function handler(seen: Seen[]) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      const h = req.headers;
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        host: h.host,
        authorization: h.authorization,
        contentLength: h["content-length"],
        transferEncoding: h["transfer-encoding"],
        expect: h.expect,
        body,
        localAddress: req.socket.localAddress ?? "",
        remotePort: req.socket.remotePort ?? 0,
      });
      const url = req.url ?? "";
      if (url.startsWith("/bench")) {
        res.end("ok");
        return;
      }
      if (url.startsWith("/stream")) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        let i = 0;
        const timer = setInterval(() => {
          res.write(`tick ${i} ${Date.now()}\n`);
          if (++i === 5) {
            clearInterval(timer);
            res.end();
          }
        }, 200);
        return;
      }
      const out = `${JSON.stringify({ url, auth: h.authorization ?? null, body })}\n`;
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out), "x-echo-auth": h.authorization ?? "" });
      res.end(out);
    });
  };
}

/** Starts the upstreams; the HTTPS leaf covers `localhost`, 127.0.0.1 and 127.0.0.2. */
export async function startUpstream(): Promise<Upstream> {
  const ca = await createCa("CN=Test upstream CA");
  const keys = (await webcrypto.subtle.generateKey(SIGNING, true, ["sign", "verify"])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: "CN=localhost",
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 10 * 86_400_000),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: "localhost" },
        { type: "ip", value: "127.0.0.1" },
        { type: "ip", value: "127.0.0.2" },
      ]),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  const tlsOptions = { cert: cert.toString("pem"), key: toPem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)) };
  const seen: Seen[] = [];
  const servers = [https.createServer(tlsOptions, handler(seen)), https.createServer(tlsOptions, handler(seen)), http.createServer(handler(seen))];
  const [one, two, plain] = servers as [https.Server, https.Server, http.Server];
  await new Promise<void>((ok) => one.listen(0, "127.0.0.1", ok));
  const port = (one.address() as AddressInfo).port;
  await new Promise<void>((ok) => two.listen(port, "127.0.0.2", ok));
  await new Promise<void>((ok) => plain.listen(0, "127.0.0.1", ok));
  return {
    port,
    httpPort: (plain.address() as AddressInfo).port,
    caPem: ca.certPem,
    seen,
    close: async () => {
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
    },
  };
}

/** A TLS socket to `host:port` tunnelled through the proxy at `proxyPort` (CONNECT), trusting `ca`. */
export function tunnel(proxyPort: number, host: string, port: number, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ port: proxyPort, host: "127.0.0.1", noDelay: true }, () => raw.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`));
    raw.once("error", reject);
    raw.once("data", (reply: Buffer) => {
      if (!reply.toString().startsWith("HTTP/1.1 200")) {
        raw.destroy();
        reject(new Error(`CONNECT refused: ${reply.toString().split("\r\n")[0]}`));
        return;
      }
      const socket = tlsConnect({ socket: raw, servername: host, ca, ALPNProtocols: ["http/1.1"] }, () => resolve(socket));
      socket.once("error", reject);
    });
  });
}

/** An https.Agent whose connections are tunnels through the proxy (keep-alive: one tunnel per pooled socket). */
export class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxyPort: number,
    private readonly ca: string,
    options: https.AgentOptions = {},
  ) {
    super(options);
  }

  override createConnection(options: http.ClientRequestArgs, callback?: (error: Error | null, stream: Duplex) => void): undefined {
    tunnel(this.proxyPort, options.host ?? "localhost", Number(options.port ?? 443), this.ca).then(
      (socket) => callback?.(null, socket),
      (error: Error) => callback?.(error, undefined as unknown as Duplex),
    );
    return undefined;
  }
}
