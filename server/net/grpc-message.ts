// Re-encodes the grpc-message header the way the gRPC spec does, so every gRPC client reads it intact.
import type { OutgoingHttpHeaders } from "node:http";
import type { RequestHandler } from "./listener.js";

/**
 * Connect encodes grpc-message with encodeURIComponent, which also escapes ':', ',',
 * '$', '=' and other printable ASCII. The gRPC spec escapes only '%' and bytes outside
 * 0x20-0x7E, and @grpc/grpc-js decodes with decodeURI, which leaves `%3A` and friends
 * undecoded: "name%3A must match". Rewriting to the spec's form is read correctly by both.
 */
export function specGrpcMessage(connectEncoded: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(connectEncoded);
  } catch {
    return connectEncoded;
  }
  let out = "";
  for (const byte of Buffer.from(decoded, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Rewrites a grpc-message among `headers` (response headers or trailers) to the spec's form, in place. */
export function rewriteGrpcMessage(headers: OutgoingHttpHeaders | undefined): void {
  const value = headers?.["grpc-message"];
  if (headers !== undefined && typeof value === "string") headers["grpc-message"] = specGrpcMessage(value);
}

/** Wraps a handler so the grpc-message it sends (in headers or trailers) follows the spec. */
export function withSpecGrpcMessage(handler: RequestHandler): RequestHandler {
  return (req, res) => {
    const writeHead = res.writeHead.bind(res) as (status: number, headers?: OutgoingHttpHeaders) => unknown;
    const addTrailers = res.addTrailers.bind(res) as (headers: OutgoingHttpHeaders) => void;
    (res as { writeHead: unknown }).writeHead = (status: number, headers?: OutgoingHttpHeaders) => {
      rewriteGrpcMessage(headers);
      return writeHead(status, headers);
    };
    (res as { addTrailers: unknown }).addTrailers = (headers: OutgoingHttpHeaders) => {
      rewriteGrpcMessage(headers);
      addTrailers(headers);
    };
    handler(req, res);
  };
}
