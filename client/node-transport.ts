// Node transports for each protocol: gRPC and Connect over HTTP/2, gRPC-Web over HTTP/1.1.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { VeilProtocol } from "./clients.js";

/** A Node transport for the protocol; every one talks to the same Veil port. */
export function nodeTransport(options: { baseUrl: string; interceptors: Interceptor[]; protocol: VeilProtocol }): Transport {
  const common = { baseUrl: options.baseUrl, interceptors: options.interceptors, readMaxBytes: 64 * 1024 * 1024 };
  switch (options.protocol) {
    case "grpc":
      return createGrpcTransport(common);
    case "connect":
      return createConnectTransport({ ...common, httpVersion: "1.1" });
    case "grpc-web":
      return createGrpcWebTransport({ ...common, httpVersion: "1.1" });
  }
}
