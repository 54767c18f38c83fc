// Browser entry: a Veil client over Connect-Web (fetch), for pages on any origin.
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { bearer, clientsFor, type VeilClient, type VeilProtocol } from "./clients.js";

export * from "./clients.js";

/** Creates a browser Veil client speaking the Connect protocol (default) or gRPC-Web. */
export function createWebVeilClient(options: { baseUrl: string; token: string; protocol?: Exclude<VeilProtocol, "grpc"> }): VeilClient {
  const transportOptions = { baseUrl: options.baseUrl, interceptors: [bearer(options.token)] };
  const transport = options.protocol === "grpc-web" ? createGrpcWebTransport(transportOptions) : createConnectTransport(transportOptions);
  return clientsFor(transport);
}
