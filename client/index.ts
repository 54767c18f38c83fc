// The typed Veil client for Node: one factory, typed clients for every service, over gRPC, gRPC-Web or Connect.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { bearer, clientsFor, type VeilClient, type VeilProtocol } from "./clients.js";
import { nodeTransport, type VeilTlsOptions } from "./node-transport.js";

export * from "./clients.js";
export type { VeilTlsOptions } from "./node-transport.js";

/** Options of {@link createVeilClient}. */
export interface VeilClientOptions {
  baseUrl: string;
  token: string;
  /** Default "grpc". */
  protocol?: VeilProtocol;
  /** For https:// URLs: a CA to trust (a private one), and a client certificate and key for mutual TLS. */
  tls?: VeilTlsOptions;
  /** Bring your own transport (a router transport in tests, a custom agent). */
  transport?: (options: { baseUrl: string; interceptors: Interceptor[]; protocol: VeilProtocol }) => Transport;
}

/**
 * Creates a Veil client over `@connectrpc/connect-node`. Browsers import `client/web.ts`
 * instead, which never reaches this module or Node's http2.
 */
export async function createVeilClient(options: VeilClientOptions): Promise<VeilClient> {
  const protocol = options.protocol ?? "grpc";
  const interceptors = [bearer(options.token)];
  if (options.transport !== undefined) return clientsFor(options.transport({ baseUrl: options.baseUrl, interceptors, protocol }));
  return clientsFor(nodeTransport({ baseUrl: options.baseUrl, interceptors, protocol, ...(options.tls !== undefined ? { tls: options.tls } : {}) }));
}
