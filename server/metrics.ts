// Prometheus metrics on a private registry: RPCs, conversations, masking, audit, store and rotation. Labels never carry data.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { ConversationObserver } from "./domain/conversation.js";
import type { RotationStatus } from "./crypto/rotation.js";

/** What the app reports into, and the registry `/metrics` renders. */
export interface Metrics {
  readonly registry: Registry;
  /**
   * One finished RPC. `procedure` is a registered method (`veil.v1.SecretService/GetSecret`,
   * a fixed set) and `code` a gRPC code name: nothing a caller writes becomes a label.
   */
  rpc(procedure: string, code: string, seconds: number): void;
  readonly conversations: ConversationObserver;
  auditWriteFailed(): void;
  storeBatch(writes: number): void;
  /** Gauges read at scrape time. */
  watch(sources: { liveConversations: () => number; rotation: () => RotationStatus }): void;
}

/** Creates the metrics; `processMetrics` adds prom-client's process and Node.js collectors (once per server, not per test app). */
export function createMetrics(options: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: "veil_rpc_requests_total", help: "RPCs answered, by procedure and gRPC code.", labelNames: ["procedure", "code"], registers });
  const duration = new Histogram({
    name: "veil_rpc_duration_seconds",
    help: "RPC latency until the answer (for server streams: until the stream ends), by procedure.",
    labelNames: ["procedure"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers,
  });
  const commands = new Counter({ name: "veil_commands_total", help: "Commands started in conversations.", registers });
  const maskedBytes = new Counter({ name: "veil_masked_output_bytes_total", help: "Command output bytes that went through the masker.", registers });
  const masks = new Counter({ name: "veil_masks_applied_total", help: "Masks put into command output (occurrences that touch count once).", registers });
  const auditFailures = new Counter({ name: "veil_audit_write_failures_total", help: "Audit events that could not be written (the action was then refused).", registers });
  const batches = new Histogram({
    name: "veil_store_write_batch_writes",
    help: "Writes grouped into one synced store batch (group commit).",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers,
  });
  let sources: Parameters<Metrics["watch"]>[0] | undefined;
  new Gauge({
    name: "veil_conversations_live",
    help: "Live conversations on this server.",
    registers,
    collect() {
      this.set(sources?.liveConversations() ?? 0);
    },
  });
  const rotationGauge = (name: string, help: string, read: (s: RotationStatus) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const status = sources?.rotation();
        if (status !== undefined) this.set(read(status));
      },
    });
  rotationGauge("veil_key_active_generation", "The key generation new writes are sealed with.", (s) => s.activeGeneration);
  rotationGauge("veil_key_generations", "Key generations the keyring holds (active and not yet retired).", (s) => s.generations.length);
  rotationGauge("veil_key_reencrypting", "1 while a rotation re-encrypts stored values, else 0.", (s) => (s.reencrypting ? 1 : 0));
  rotationGauge("veil_key_reencrypt_values_moved", "Stored values re-encrypted by the current (or last) rotation.", (s) => s.valuesMoved);
  rotationGauge("veil_key_reencrypt_values_remaining", "Stored values still sealed under an older generation.", (s) => s.valuesRemaining);

  return {
    registry,
    rpc(procedure, code, seconds) {
      requests.inc({ procedure, code });
      duration.observe({ procedure }, seconds);
    },
    conversations: {
      commandStarted: () => commands.inc(),
      masked(bytes, applied) {
        if (bytes > 0) maskedBytes.inc(bytes);
        if (applied > 0) masks.inc(applied);
      },
    },
    auditWriteFailed: () => auditFailures.inc(),
    storeBatch: (writes) => batches.observe(writes),
    watch(next) {
      sources = next;
    },
  };
}
