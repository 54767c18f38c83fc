// A lean path for unary gRPC over HTTP/2: Connect's own implementations, interceptors and status encoding, without its per-call stream machinery or Node's compatibility layer.
import { create, type DescMethod, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextValues,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { createMethodSerializationLookup, createMethodUrl, validateUniversalHandlerOptions } from "@connectrpc/connect/protocol";
import { contentTypeProto, parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { constants as h2, type ServerHttp2Stream } from "node:http2";
import { capDeadlineHeaders } from "./deadline-cap.js";
import { rewriteGrpcMessage } from "./grpc-message.js";
import type { StreamTaker } from "./listener.js";
import { NodeRequestHeaders } from "./node-headers.js";
import { assignRequestId, REQUEST_ID_HEADER } from "./request-id.js";

/**
 * Why this exists: Connect serves every gRPC call, unary ones too, as a pipeline of async
 * iterables (request body, envelope split, parse, implementation, serialize, join), with two
 * AbortControllers, a linked signal, a DOMException per call for the abort at its end, and web
 * Headers copied in and out. Profiled (bench/README.md), that machinery is most of a no-op
 * call's server CPU. Here a unary call with the common framing (HTTP/2, `application/grpc` or
 * `+proto`, no compression, one uncompressed message that parses) is read whole,
 * handed to Connect's own `invokeUnaryImplementation` with the same interceptors, and answered
 * with Connect's own trailer encoding (`setTrailerStatus`). It is served on the HTTP/2 stream
 * itself (the listener's `streams`), before Node wraps it in a request and response, doing for it
 * what the wrappers in front of the adapter do for a call without an Origin (the request id, the
 * spec's grpc-message, the date Node adds). Server streams stay on Connect's path: a lean variant of
 * them measured no better (bench/README.md). Anything else (an Origin, an Expect) goes to the request
 * handler untouched, and a body that is not exactly one such message goes to it with the bytes read
 * put back: framing errors, decode errors (the decode guard) and limits keep their exact answers. A
 * `grpc-timeout` is parsed with Connect's own `parseTimeout` and run as Connect's handler context
 * runs it (one timer, the same DEADLINE_EXCEEDED reason, the same `timeoutMs()`); a header Connect
 * refuses goes to Connect untouched (nothing read yet), so its INVALID_ARGUMENT is its own.
 */

/** A unary method as served: its implementation, descriptors and (de)serializers, built once. */
interface UnaryRoute {
  spec: Extract<MethodImplSpec, { kind: "unary" }>;
  method: DescMethod;
  service: DescService;
  parse: (data: Uint8Array) => unknown;
  serialize: (message: unknown) => Uint8Array;
}

/** Options: the adapter's interceptors and read limit, so both paths enforce the same. */
export interface GrpcLeanOptions {
  interceptors: Interceptor[];
  readMaxBytes: number;
  /**
   * Encoders written by hand for some output messages, by type name (server/rpc/secret-wire.ts):
   * each writes exactly toBinary's bytes, faster. Every other message is Connect's serializer's.
   */
  encoders?: ReadonlyMap<string, (message: never) => Uint8Array>;
  /** The adapter's `maxTimeoutMs`, when it sets one (Connect's default: none), so a longer grpc-timeout is refused alike. */
  maxTimeoutMs?: number;
}

/** Builds the lean path; `record` wraps the router the routes register on, `seal` takes the final handlers, `take` is the listener's `streams`. */
export function createGrpcLeanPath(options: GrpcLeanOptions) {
  const opt = validateUniversalHandlerOptions({
    interceptors: options.interceptors,
    readMaxBytes: options.readMaxBytes,
    acceptCompression: [],
    ...(options.maxTimeoutMs !== undefined ? { maxTimeoutMs: options.maxTimeoutMs } : {}),
  });
  const routes = new Map<string, UnaryRoute>();
  const envelopeMax = opt.readMaxBytes + 5;

  const addService = (service: DescService, impl: object) => {
    const spec = createServiceImplSpec(service, impl as never);
    for (const m of Object.values(spec.methods)) {
      if (m.kind !== "unary") continue;
      const serialization = createMethodSerializationLookup(m.method, opt.binaryOptions, opt.jsonOptions, opt);
      const i = serialization.getI(true);
      const o = serialization.getO(true);
      const encode = options.encoders?.get(m.method.output.typeName) as ((message: unknown) => Uint8Array) | undefined;
      const serialize = encode ?? ((x: unknown) => o.serialize(x as never));
      routes.set(createMethodUrl("/", m.method), { spec: m, method: m.method, service, parse: (d) => i.parse(d), serialize });
    }
  };

  return {
    /** A router that registers on `router` and remembers each service's implementation. */
    record(router: ConnectRouter): ConnectRouter {
      const recording: ConnectRouter = {
        get handlers() {
          return router.handlers;
        },
        service(service, impl, serviceOptions) {
          // Service-level options (other interceptors, protocols off) would change what the lean path must do: not taken.
          if (serviceOptions === undefined) addService(service, impl);
          router.service(service, impl, serviceOptions);
          return recording;
        },
        rpc(method, impl, rpcOptions) {
          router.rpc(method, impl, rpcOptions);
          return recording;
        },
      };
      return recording;
    },
    /** Keeps only the routes Connect serves as finally registered (decode guard in front), so a declined call always has its handler. */
    seal(router: ConnectRouter): void {
      const served = new Set(router.handlers.map((h) => h.requestPath));
      for (const path of routes.keys()) if (!served.has(path)) routes.delete(path);
    },
    /** Serves an eligible call on its stream; declines (false) every other, for the request handler (the Connect adapter behind its wrappers). */
    take: ((stream, headers, handOver) => {
      const route = headers[":method"] === "POST" ? routes.get(headers[":path"] ?? "") : undefined;
      // A browser's call (Origin: CORS headers) and an Expect are the wrappers' and Node's to answer.
      if (route === undefined || !eligible(headers) || headers.origin !== undefined || headers.expect !== undefined) return false;
      capDeadlineHeaders(headers);
      const timeout = headers["grpc-timeout"];
      const deadline = timeout === undefined ? undefined : readDeadline(timeout, opt.maxTimeoutMs);
      if (deadline === null) return false;
      // Node's compatibility layer swallows stream errors (a reset mid-call) the same way; the call sees them as its close.
      stream.on("error", ignore);
      readStream(stream, envelopeMax, (chunks, size, whole) => {
        const message = whole ? singleMessage(chunks, size, route) : undefined;
        if (message === undefined) handOver(chunks, whole);
        else void serveUnary(route, opt.interceptors, stream, headers, message, deadline);
      });
      return true;
    }) satisfies StreamTaker,
  };
}

function ignore(): void {}

/** The framing the lean path serves; everything else is Connect's to answer. */
function eligible(headers: IncomingHttpHeaders): boolean {
  const type = headers["content-type"];
  if (type === undefined) return false;
  const ct = type.length === 16 || type.length === 22 ? type.toLowerCase() : "";
  if (ct !== "application/grpc" && ct !== "application/grpc+proto") return false;
  const encoding = headers["grpc-encoding"];
  return encoding === undefined || encoding === "identity";
}

/** A call's deadline as Connect's handler context keeps it: the parsed timeout and when the call arrived. */
interface Deadline {
  timeoutMs: number;
  start: number;
}

/** The deadline of a `grpc-timeout` header (read as Connect reads it, capped as capDeadlineHeaders caps it), or null where Connect is to answer: a value it refuses. */
function readDeadline(header: string | string[], maxTimeoutMs: number): Deadline | null {
  if (typeof header !== "string") return null;
  const timeout = parseTimeout(header, maxTimeoutMs);
  if (timeout.error !== undefined || timeout.timeoutMs === undefined) return null;
  return { timeoutMs: timeout.timeoutMs, start: Date.now() };
}

/**
 * Arms the deadline on the call's signal, as Connect's createDeadlineSignal does: aborted with
 * its DEADLINE_EXCEEDED reason when the timeout (counted from the call's arrival, as Connect counts
 * it) runs out, at once for a timeout of 0 or one already spent reading the body.
 */
function armDeadline(deadline: Deadline, call: CallSignal): NodeJS.Timeout | undefined {
  const expire = () => call.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
  const left = deadline.timeoutMs - (Date.now() - deadline.start);
  if (deadline.timeoutMs > 0 && left > 0) return setTimeout(expire, left);
  expire();
  return undefined;
}

/**
 * A call's AbortSignal, made the first time something reads it, already aborted (with the first
 * reason) if the call was aborted before. Most unary calls never read it: Node's AbortController,
 * its signal and the abort event at every call's end were ~4 % of a GetSecret's server CPU.
 */
export class CallSignal {
  private controller: AbortController | undefined;
  private aborted = false;
  private reason: unknown;

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** Aborts once; later reasons are ignored, as AbortController ignores them. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

/**
 * Reads the body up to `max` bytes; `whole` is false when it was larger, the rest left unread. Read
 * with 'readable' and read(), not 'data': once the listener is off the stream is as a new one, so a
 * request the body is handed over to starts it flowing again with its own 'data' listener.
 */
function readStream(stream: ServerHttp2Stream, max: number, done: (chunks: Buffer[], size: number, whole: boolean) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const onReadable = () => {
    for (let chunk = stream.read() as Buffer | null; chunk !== null; chunk = stream.read() as Buffer | null) {
      chunks.push(chunk);
      size += chunk.length;
      if (size > max) {
        stop();
        done(chunks, size, false);
        return;
      }
    }
  };
  const onEnd = () => {
    stop();
    done(chunks, size, true);
  };
  // A reset or a dropped connection before the end: nothing to answer.
  const stop = () => {
    stream.off("readable", onReadable);
    stream.off("end", onEnd);
    stream.off("close", stop);
  };
  stream.on("readable", onReadable);
  stream.once("end", onEnd);
  stream.once("close", stop);
}

/** The request message when the body is exactly one uncompressed envelope that parses; else undefined. */
function singleMessage(chunks: Buffer[], size: number, route: UnaryRoute): unknown {
  if (size < 5) return undefined;
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
  if (body[0] !== 0 || body.readUInt32BE(1) !== size - 5) return undefined;
  try {
    return route.parse(body.subarray(5));
  } catch {
    // Connect (behind the decode guard) gives the exact INVALID_ARGUMENT or limit error.
    return undefined;
  }
}

/** Shared by every call: the reason the signal carries once a call is over (Connect makes a new DOMException each time). */
const CALL_OVER = new DOMException("This operation was aborted", "AbortError");

/** Runs one unary call through the interceptors and implementation and writes the gRPC answer. */
async function serveUnary(route: UnaryRoute, interceptors: Interceptor[], stream: ServerHttp2Stream, headers: IncomingHttpHeaders, input: unknown, deadline: Deadline | undefined): Promise<void> {
  const requestId = assignRequestId(headers);
  const call = new CallSignal();
  // No timer (nor anything else) for a call without a deadline.
  const timer = deadline === undefined ? undefined : armDeadline(deadline, call);
  let over = false;
  // A client that resets the stream cancels the call, as Connect's adapter signals it.
  const onClose = () => {
    if (!over) call.abort(resetError(stream.rstCode));
  };
  stream.once("close", onClose);
  const responseHeader = new Headers({ "content-type": contentTypeProto });
  const responseTrailer = new Headers({ "grpc-status": "0" });
  let error: unknown;
  let body: Buffer | undefined;
  try {
    const output = await invokeUnary(route, interceptors, requestOf(route, stream, headers, call, input), deadline, responseHeader, responseTrailer);
    body = envelope(route.serialize(output));
  } catch (e) {
    error = e;
  }
  over = true;
  if (timer !== undefined) clearTimeout(timer);
  stream.off("close", onClose);
  call.abort(error ?? CALL_OVER);
  if (error !== undefined) setErrorStatus(responseTrailer, error);
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  // As the wrappers and Node's compatibility layer would write it: the request id first, the date last.
  // (what the call set overrides what the wrapper set, as writeHead's headers override setHeader's).
  const head: OutgoingHttpHeaders = Object.assign({ ":status": 200, [REQUEST_ID_HEADER]: requestId }, nodeHeaders(responseHeader));
  head.date ??= httpDate();
  rewriteGrpcMessage(head);
  const trailers = nodeHeaders(responseTrailer);
  rewriteGrpcMessage(trailers);
  try {
    stream.respond(head, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers(trailers));
    stream.end(body);
  } catch {
    // Headers Node refuses to send (a connection-specific name set by a handler): the call fails, the process does not.
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  }
}

/** The Date header's value, made once a second (as Node's own utcDate). */
let dateSecond = -1;
let dateText = "";
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/**
 * Connect's invokeUnaryImplementation, written out so the call's signal stays unmade until read:
 * Connect's copies it into the request and the handler context eagerly. The same steps: the
 * interceptors around the implementation, its output normalized with `create` (a message passes
 * unchanged), the handler context as Connect's mergeRequest makes it from the request the
 * interceptors passed on, and the final response's headers and trailers copied over the call's.
 */
async function invokeUnary(route: UnaryRoute, interceptors: Interceptor[], request: UnaryRequest, deadline: Deadline | undefined, responseHeader: Headers, responseTrailer: Headers): Promise<unknown> {
  const { method, spec } = route;
  const timeoutMs = deadline === undefined ? NO_TIMEOUT : remaining(deadline);
  const implementation = async (req: UnaryRequest): Promise<UnaryResponse> => {
    const context: HandlerContext = {
      method,
      service: req.service,
      requestMethod: req.requestMethod,
      protocolName: "grpc",
      url: req.url,
      get signal() {
        return req.signal;
      },
      timeoutMs,
      requestHeader: req.header,
      responseHeader,
      responseTrailer,
      values: req.contextValues,
    };
    const output = await spec.impl(req.message as never, context);
    return { stream: false, message: create(method.output, output as never), method: method as never, service: route.service, header: responseHeader, trailer: responseTrailer };
  };
  let next = implementation;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next as never) as unknown as typeof next;
  const { message, header, trailer } = await next(request);
  copyHeaders(header, responseHeader);
  copyHeaders(trailer, responseTrailer);
  return message;
}

/** Connect's copyHeaders: `to` ends with exactly `from`'s entries (nothing to do when they are one object). */
function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  const keys: string[] = [];
  to.forEach((_, key) => {
    keys.push(key);
  });
  for (const key of keys) to.delete(key);
  from.forEach((value, key) => {
    to.set(key, value);
  });
}

/** One gRPC message frame: flag 0 (uncompressed), big-endian length, the bytes. */
function envelope(data: Uint8Array): Buffer {
  const body = Buffer.allocUnsafe(5 + data.length);
  body[0] = 0;
  body.writeUInt32BE(data.length, 1);
  body.set(data, 5);
  return body;
}

/** The trailer status Connect's gRPC handler sets for an error: a ConnectError as it is, anything else INTERNAL. */
function setErrorStatus(trailer: Headers, error: unknown): void {
  setTrailerStatus(trailer, error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error));
}

/** What `timeoutMs()` answers for a call without a deadline; one function for all of them. */
const NO_TIMEOUT = () => undefined;

/** The request the interceptors see, as Connect's gRPC handler builds it (requestCommon), its signal read through `call`. */
function requestOf(route: UnaryRoute, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, call: CallSignal, input: unknown): UnaryRequest {
  // As Connect's adapter converts them (pseudo-headers left out, x-request-id as assignRequestId set it), read in place until changed.
  const header = new NodeRequestHeaders(headers);
  const secure = stream.session?.encrypted === true;
  // The request's authority as Node's compatibility layer gives it (`:authority`, else Host).
  const authority = headers[":authority"] ?? headers.host;
  return {
    stream: false,
    message: input as never,
    method: route.method as never,
    requestMethod: "POST",
    url: `${secure ? "https" : "http"}://${authority}${headers[":path"]}`,
    get signal() {
      return call.signal;
    },
    header,
    service: route.service,
    contextValues: createContextValues(),
  };
}

/** Connect's `timeoutMs()`: the ms left to a deadline held as a Date (whole ms, `new Date(start + timeoutMs)` truncates), negative once past. */
function remaining(deadline: Deadline): () => number {
  const end = Math.trunc(deadline.start + deadline.timeoutMs);
  return () => end - Date.now();
}

/** Web headers as Node's outgoing headers (repeated names as arrays), as Connect's adapter writes them. */
function nodeHeaders(headers: Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = Object.create(null);
  headers.forEach((value, key) => {
    const existing = out[key];
    out[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [String(existing), value];
  });
  return out;
}

/** The error Connect's adapter aborts a call with when its HTTP/2 stream was reset; undefined for a plain close. */
function resetError(rstCode: number): ConnectError | undefined {
  const name = RESET_CODES[rstCode];
  return name === undefined ? undefined : new ConnectError(`http/2 stream closed with error code ${name[0]} (0x${rstCode.toString(16)})`, name[1]);
}

const RESET_CODES: Record<number, [string, Code]> = {
  1: ["PROTOCOL_ERROR", Code.Internal],
  2: ["INTERNAL_ERROR", Code.Internal],
  3: ["FLOW_CONTROL_ERROR", Code.Internal],
  4: ["SETTINGS_TIMEOUT", Code.Internal],
  6: ["FRAME_SIZE_ERROR", Code.Internal],
  7: ["REFUSED_STREAM", Code.Unavailable],
  8: ["CANCEL", Code.Canceled],
  9: ["COMPRESSION_ERROR", Code.Internal],
  10: ["CONNECT_ERROR", Code.Internal],
  11: ["ENHANCE_YOUR_CALM", Code.ResourceExhausted],
  12: ["INADEQUATE_SECURITY", Code.PermissionDenied],
  13: ["HTTP_1_1_REQUIRED", Code.PermissionDenied],
};
