// Implements grpc.health.v1.Health: SERVING until the server drains, NOT_FOUND for services it does not serve.
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

/** Tuning for the health service. */
export interface HealthOptions {
  /**
   * Fully-qualified names of the served services (e.g. `SecretService.typeName`); "" (the
   * whole server) is always known. Any other name is NOT_FOUND, as the protocol asks.
   */
  services?: readonly string[];
  /** How often Watch re-reads `isServing` (default 1000 ms); it has no change events. */
  watchIntervalMs?: number;
}

/**
 * Creates the Health implementation. `isServing` returns false once the server drains, so
 * load balancers and orchestrators stop sending new work before the port closes.
 */
export function createHealthService(isServing: () => boolean, options: HealthOptions = {}): ServiceImpl<typeof Health> {
  const known = new Set(["", ...(options.services ?? [])]);
  const intervalMs = options.watchIntervalMs ?? 1000;
  const current = () => (isServing() ? Status.SERVING : Status.NOT_SERVING);
  return {
    check(req) {
      if (!known.has(req.service)) {
        throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      }
      return { status: current() };
    },
    async *watch(req, ctx) {
      // The protocol wants Watch on an unknown service to report SERVICE_UNKNOWN and keep
      // the stream open (the service may appear later), not to fail.
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const status = known.has(req.service) ? current() : Status.SERVICE_UNKNOWN;
        if (status !== last) {
          yield { status };
          last = status;
        }
        // An open Watch would otherwise hold the drain until its deadline: once the
        // watcher has seen NOT_SERVING there is nothing more to tell it.
        if (status === Status.NOT_SERVING) return;
        await sleep(intervalMs, ctx.signal);
      }
    },
  };
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
