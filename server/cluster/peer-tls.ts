// TLS for server-to-server calls: peers on https:// are verified with the system's roots, this server's own certificate and client CA; shown its certificate under mTLS.
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import type { VeilTlsOptions } from "../../client/node-transport.js";
import type { ServerConfig } from "../config.js";

/**
 * Servers of one deployment usually share a certificate (trusted as itself) or a private CA
 * (the --tls-client-ca bundle under mTLS, else NODE_EXTRA_CA_CERTS): peers verify each other
 * without another flag. Under --tls-client-ca a peer asks for a client certificate: we show
 * our own, which then needs the clientAuth usage besides serverAuth (or none).
 */
export function peerTls(config: Pick<ServerConfig, "tlsCert" | "tlsKey" | "tlsClientCa">): VeilTlsOptions | undefined {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  const own = readFileSync(config.tlsCert, "utf8");
  return {
    ca: [...rootCertificates, own, ...(config.tlsClientCa !== undefined ? [readFileSync(config.tlsClientCa, "utf8")] : [])].join("\n"),
    ...(config.tlsClientCa !== undefined ? { cert: own, key: readFileSync(config.tlsKey) } : {}),
  };
}
