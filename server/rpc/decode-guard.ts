// Decode guard: a request body that is not a valid message answers INVALID_ARGUMENT, on every protocol.
import { type DescMessage, fromBinary, fromJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import type { Logger } from "../log.js";
import { describeJsonFault, findUnknownEnumName, locateBinaryFault } from "./wire-errors.js";

/**
 * Why this exists: Connect turns a binary parse failure into INTERNAL ("parse binary: ..."),
 * before any interceptor runs for unary calls, and its JSON errors quote the offending value
 * (which may be a secret). So the guard decodes the body first, with the same decoder and
 * options Connect uses, and on failure makes the body stream itself fail with an
 * INVALID_ARGUMENT ConnectError: Connect then answers that error in the caller's protocol
 * (gRPC trailers, gRPC-Web trailer frame, Connect JSON or end-stream) and never parses the bytes.
 */

/** How a content type frames its messages; undefined = not ours to judge (Connect answers it). */
function framingOf(contentType: string | null): { enveloped: boolean; json: boolean } | undefined {
  const ct = (contentType ?? "").toLowerCase().split(";")[0]!.trim();
  const enveloped = /^application\/(grpc|grpc-web|connect)(\+(proto|json))?$/.exec(ct);
  // grpc-web-text is base64 and refused by Connect; plain "application/connect" is no message type.
  if (enveloped !== null) return enveloped[1] === "connect" && enveloped[3] === undefined ? undefined : { enveloped: true, json: enveloped[3] === "json" };
  if (ct === "application/proto") return { enveloped: false, json: false };
  if (ct === "application/json") return { enveloped: false, json: true };
  return undefined;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes one message as Connect will; throws the client-facing error if it cannot. */
function check(desc: DescMessage, bytes: Uint8Array, json: boolean): void {
  let text = "";
  try {
    if (json) {
      text = strictUtf8.decode(bytes);
      fromJsonString(desc, text, { ignoreUnknownFields: true });
    } else {
      fromBinary(desc, bytes);
    }
  } catch (error) {
    const why = json ? (error instanceof TypeError ? `${desc.typeName}: invalid UTF-8` : describeJsonFault((error as Error).message)) : (locateBinaryFault(desc, bytes) ?? binaryVerdict(desc, error));
    throw new ConnectError(`request could not be decoded: ${why}`, Code.InvalidArgument);
  }
  // Parsed once more only to look at enum names: JSON bodies are small and rare next to binary.
  const unknownEnum = json ? findUnknownEnumName(desc, JSON.parse(text)) : undefined;
  if (unknownEnum !== undefined) throw new ConnectError(`request could not be decoded: ${unknownEnum}: unknown enum value`, Code.InvalidArgument);
}

/** protobuf-es's own binary verdicts name wire structure, never data; kept when the walk found nothing. */
function binaryVerdict(desc: DescMessage, error: unknown): string {
  const message = error instanceof Error ? error.message : "";
  const known = /^(premature EOF|illegal tag: field no \d+ wire type \d+|invalid end group tag|invalid varint|cant skip wire type \d+)$/.test(message);
  return `${desc.typeName}: ${known ? message : "malformed protobuf"}`;
}

/** Splits the body into envelopes; undefined when the last one is incomplete (Connect refuses that itself). */
function envelopes(bytes: Uint8Array): { flags: number; data: Uint8Array }[] | undefined {
  const out: { flags: number; data: Uint8Array }[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  while (pos < bytes.length) {
    if (bytes.length - pos < 5) return undefined;
    const length = view.getUint32(pos + 1);
    if (bytes.length - pos - 5 < length) return undefined;
    out.push({ flags: bytes[pos]!, data: bytes.subarray(pos + 5, pos + 5 + length) });
    pos += 5 + length;
  }
  return out;
}

/** Checks a whole body; framing faults Connect already answers well (incomplete envelope, compression) pass. */
function checkBody(desc: DescMessage, body: Uint8Array, framing: { enveloped: boolean; json: boolean }): void {
  if (!framing.enveloped) {
    check(desc, body, framing.json);
    return;
  }
  const messages = envelopes(body);
  if (messages === undefined) return;
  // Unary and server-streaming methods (the only ones guarded) take exactly one request message.
  if (messages.length !== 1) throw new ConnectError(`request could not be decoded: expected one message, got ${messages.length}`, Code.InvalidArgument);
  const [message] = messages;
  if (message!.flags === 0) check(desc, message!.data, framing.json);
}

/** The body, buffered up to `maxBytes`, checked, then replayed to Connect unchanged. */
async function* guardedBody(body: AsyncIterable<Uint8Array>, desc: DescMessage, framing: { enveloped: boolean; json: boolean }, maxBytes: number, onReject: (e: ConnectError) => void) {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const it = body[Symbol.asyncIterator]();
  for (let r = await it.next(); !r.done; r = await it.next()) {
    chunks.push(r.value);
    size += r.value.byteLength;
    if (size > maxBytes) {
      // Over the limit: Connect's own check answers RESOURCE_EXHAUSTED; stream the rest through.
      yield* chunks;
      for (let rest = await it.next(); !rest.done; rest = await it.next()) yield rest.value;
      return;
    }
  }
  const whole = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  try {
    checkBody(desc, whole, framing);
  } catch (error) {
    if (error instanceof ConnectError) onReject(error);
    throw error;
  }
  yield whole;
}

/** Puts the guard in front of every handler of the router; call after all services are registered. */
export function guardDecoding(router: ConnectRouter, options: { readMaxBytes: number; logger: Logger }): void {
  const handlers = router.handlers;
  for (let i = 0; i < handlers.length; i++) {
    const inner = handlers[i]!;
    // Streams of requests (reflection is bidi) are read message by message while they run: not buffered here.
    if (inner.method.methodKind !== "unary" && inner.method.methodKind !== "server_streaming") continue;
    const procedure = `${inner.service.typeName}/${inner.method.name}`;
    const guarded = (req: UniversalServerRequest) => {
      // Set by the HTTP layer (withRequestId) before the adapter runs: the interceptors have not run yet.
      const requestId = req.header.get("x-request-id") ?? undefined;
      const onReject = (error: ConnectError) => options.logger.log("warn", "request could not be decoded", { requestId, procedure, code: Code[error.code], reason: error.rawMessage });
      const framing = framingOf(req.header.get("content-type"));
      const body = req.body;
      if (framing === undefined || typeof body !== "object" || body === null || !(Symbol.asyncIterator in body)) return inner(req);
      // Envelope headers add 5 bytes per message; one message is all any method takes.
      return inner({ ...req, body: guardedBody(body as AsyncIterable<Uint8Array>, inner.method.input, framing, options.readMaxBytes + 5, onReject) });
    };
    handlers[i] = Object.assign(guarded, inner) as UniversalHandler;
  }
}
