// One way for interceptors to act when a call ends, whether it is unary or a server stream.
import type { Interceptor, StreamResponse, UnaryResponse } from "@connectrpc/connect";

/** What to do when a call ends; `failed` may throw a replacement error or return to rethrow the original. */
export interface CallEnd {
  succeeded?: () => void | Promise<void>;
  failed?: (error: unknown) => void | Promise<void>;
}

/**
 * Wraps `next` so `end` runs once the call is over: for unary calls when the handler
 * returns or throws; for server streams when the stream is drained or fails mid-iteration
 * (errors of a stream surface while it is read, not when the handler returns).
 */
export async function around(next: Parameters<Interceptor>[0], req: Parameters<ReturnType<Interceptor>>[0], end: CallEnd): Promise<UnaryResponse | StreamResponse> {
  let res: UnaryResponse | StreamResponse;
  try {
    res = await next(req);
  } catch (error) {
    await end.failed?.(error);
    throw error;
  }
  if (!res.stream) {
    await end.succeeded?.();
    return res;
  }
  const messages = res.message;
  return {
    ...res,
    message: (async function* () {
      try {
        yield* messages;
      } catch (error) {
        await end.failed?.(error);
        throw error;
      }
      await end.succeeded?.();
    })(),
  } as StreamResponse;
}
