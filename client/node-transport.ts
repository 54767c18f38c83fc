// Node transports for each protocol: gRPC and Connect over HTTP/2, gRPC-Web over HTTP/1.1; TLS (and client certificates) for https:// URLs.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { VeilProtocol } from "./clients.js";

/** TLS for an https:// base URL, PEM: a CA to trust besides the system's, and a client certificate for mutual TLS. */
export interface VeilTlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** A Node transport for the protocol; every one talks to the same Veil port. */
export function nodeTransport(options: { baseUrl: string; interceptors: Interceptor[]; protocol: VeilProtocol; tls?: VeilTlsOptions }): Transport {
  const common = { baseUrl: options.baseUrl, interceptors: options.interceptors, readMaxBytes: 64 * 1024 * 1024 };
  // Only the fields given: an undefined `ca` would replace Node's default roots with none.
  const tls = options.tls ?? {};
  const nodeOptions = {
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls.key !== undefined ? { key: tls.key } : {}),
  };
  switch (options.protocol) {
    case "grpc":
      return createGrpcTransport({ ...common, nodeOptions });
    case "connect":
      return createConnectTransport({ ...common, httpVersion: "1.1", nodeOptions });
    case "grpc-web":
      return createGrpcWebTransport({ ...common, httpVersion: "1.1", nodeOptions });
  }
}
