// One way for interceptors to act when a call ends, whether it is unary or a server stream.
import type { Interceptor, StreamResponse, UnaryResponse } from "@connectrpc/connect";

/** What to do when a call ends; `failed` may throw a replacement error or return to rethrow the original. */
export interface CallEnd {
  succeeded?: () => void | Promise<void>;
  failed?: (error: unknown) => void | Promise<void>;
}

type Next = Parameters<Interceptor>[0];
type Request = Parameters<ReturnType<Interceptor>>[0];
type Response = UnaryResponse | StreamResponse;

/**
 * Wraps `next` so `end` runs once the call is over: for unary calls when the handler
 * returns or throws; for server streams when the stream is drained or fails mid-iteration
 * (errors of a stream surface while it is read, not when the handler returns).
 * Chained with `then` rather than awaited: every interceptor of every call goes through here,
 * and a hook that returns nothing then costs no extra promise or microtask.
 */
export function around(next: Next, req: Request, end: CallEnd): Promise<Response> {
  let pending: Promise<Response>;
  try {
    pending = next(req);
  } catch (error) {
    return failedWith(end, error);
  }
  return pending.then(
    (res) => {
      if (res.stream) return aroundStream(res, end);
      const done = end.succeeded?.();
      return done === undefined ? res : done.then(() => res);
    },
    (error: unknown) => failedWith(end, error),
  );
}

/** Runs `failed` (which may throw its own error instead), then rethrows the call's error. */
function failedWith(end: CallEnd, error: unknown): Promise<never> {
  let done: void | Promise<void>;
  try {
    done = end.failed?.(error);
  } catch (replacement) {
    return Promise.reject(replacement);
  }
  if (done === undefined) return Promise.reject(error);
  return done.then(() => Promise.reject(error));
}

function aroundStream(res: StreamResponse, end: CallEnd): StreamResponse {
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
