// One conversation: a shell session with a frozen secret snapshot, whose output leaves only masked.
import { newConversationId } from "./conversation-id.js";
import { type EgressBinding, type NetworkMode, newEgressId } from "./egress-binding.js";
import { fail } from "../errors.js";
import { CommandControl, INPUT_BUFFER_BYTES, type LimitName, type ShellSession } from "./executor.js";
import { type InjectedSecret, referencedEnv } from "./injection.js";
import type { MaskSet, StreamMasker } from "./masker.js";

/** What a conversation streams, transport-free. */
export type ConversationEvent =
  | { type: "command_started"; commandId: string; command: string }
  | { type: "output"; commandId: string; stream: "stdout" | "stderr"; data: Uint8Array }
  | {
      type: "command_exited";
      commandId: string;
      exitCode: number;
      durationMs: number;
      timedOut: boolean;
      truncated: boolean;
      /** The resource limit that ended the command, if one did. */
      limit: LimitName | undefined;
    };

/** Who may reach a conversation: its tenant, and its agent when it has one. */
export interface ConversationOwner {
  tenant: string;
  agent: string;
}

/** The network side of a conversation, as its start asked for it. */
export interface ConversationNetwork {
  networkMode: NetworkMode;
  /** `egress_allow`, lowercased. */
  egressAllow: readonly string[];
  /** The token that started it (the gateway audits under it). */
  tokenId: string;
}

/** Counts for metrics, fed per chunk and per command (never a value, a name or a command line). */
export interface ConversationObserver {
  commandStarted(): void;
  /** Output bytes that went through a masker, and the masks that came out of them. */
  masked(bytes: number, masks: number): void;
}

const UNOBSERVED: ConversationObserver = { commandStarted() {}, masked() {} };

/** How a conversation was set up. */
export interface ConversationSettings {
  inject: "declared" | "referenced";
  secrets: readonly InjectedSecret[];
  defaultTimeoutMs: number;
  outputLimitBytes: number;
  keepOnDisconnect: boolean;
  /** The id, when the registry chose it (naming this server); else a fresh `conv_<hex>`. */
  id?: string;
}

/**
 * A live conversation. Commands run one after another; every output byte
 * passes this stream's masker before it is counted against the cap or emitted,
 * so a cut can never leave half a secret unmasked.
 */
export class Conversation {
  /** `conv_<serverId>_<hex>` when the registry names its server (settings.id), else `conv_<hex>`. */
  readonly id: string;
  lastActive = Date.now();
  running = 0;
  private commandCount = 0;
  /** Handles on the commands started and not yet exited, for SendInput and SignalCommand. */
  private readonly controls = new Map<string, CommandControl>();
  /**
   * The last commands that ran with stdin and have exited: a client copying its stdin sends the
   * eof when its input ends, and cannot know whether the command has ended just before (a quick
   * `echo`, the exit still on its way). That eof closes what is already closed: accepted, not a failure.
   */
  private readonly exitedWithStdin = new Set<string>();
  private ended = false;
  /**
   * One masker per output stream for the conversation's whole life, not per command: a
   * background job's output reaches whichever command runs next, and a secret it prints
   * across that boundary must still be found. At each command's exit flush() releases what
   * the masker held (a possible start of a secret of 4 bytes or more as a mask, less as is).
   */
  private readonly maskers: Record<"stdout" | "stderr", StreamMasker>;
  /**
   * What the egress gateway reads (frozen): set when the conversation runs with
   * NETWORK_MODE_EGRESS or holds any placeholder; undefined otherwise.
   */
  readonly egress: EgressBinding | undefined;

  constructor(
    readonly owner: ConversationOwner,
    readonly settings: ConversationSettings,
    readonly sandbox: "bubblewrap" | "none",
    private readonly shell: ShellSession,
    private readonly masks: MaskSet,
    private readonly onEnd: (conversation: Conversation) => void,
    network: ConversationNetwork = { networkMode: "none", egressAllow: [], tokenId: "" },
    private readonly observer: ConversationObserver = UNOBSERVED,
  ) {
    this.id = settings.id ?? newConversationId();
    this.maskers = { stdout: masks.stream(), stderr: masks.stream() };
    const substitutions = settings.secrets.flatMap((s) => s.substitutions ?? []);
    this.egress =
      network.networkMode === "egress" || substitutions.length > 0
        ? Object.freeze({
            egressId: newEgressId(),
            conversationId: this.id,
            tenant: owner.tenant,
            agent: owner.agent,
            tokenId: network.tokenId,
            networkMode: network.networkMode,
            allow: Object.freeze([...network.egressAllow]),
            substitutions: Object.freeze(substitutions),
          })
        : undefined;
  }

  /** Environment names that hold a placeholder instead of a value, sorted. */
  get placeholderNames(): string[] {
    return this.settings.secrets.flatMap((s) => s.placeholders ?? []).sort();
  }

  /** Environment names whose values are too short to mask (injected all the same). */
  get unmaskedNames(): string[] {
    const short = new Set(this.masks.unmaskedValues);
    return this.settings.secrets.flatMap((s) => Object.entries(s.env).filter(([, v]) => short.has(v)).map(([k]) => k));
  }

  /** Runs one command and streams its masked events. Aborting `signal` kills the command. */
  async *run(command: string, options: { timeoutMs?: number; signal?: AbortSignal; stdin?: boolean } = {}): AsyncGenerator<ConversationEvent> {
    if (this.ended) throw fail.notFound("conversation_id: the conversation has ended");
    const commandId = `cmd_${++this.commandCount}`;
    this.running++;
    this.lastActive = Date.now();
    try {
      const control = new CommandControl(options.stdin === true, INPUT_BUFFER_BYTES);
      this.controls.set(commandId, control);
      yield { type: "command_started", commandId, command };
      this.observer.commandStarted();
      const maskers = this.maskers;
      // Masks are counted by difference, once per chunk: the masker's loop stays untouched.
      let masks = maskers.stdout.masksApplied + maskers.stderr.masksApplied;
      const observe = (bytes: number) => {
        const now = maskers.stdout.masksApplied + maskers.stderr.masksApplied;
        this.observer.masked(bytes, now - masks);
        masks = now;
      };
      let emitted = 0;
      let capped = false;
      const limit = this.settings.outputLimitBytes;
      const env = this.settings.inject === "referenced" ? referencedEnv(this.settings.secrets, command) : undefined;
      const events = this.shell.run(command, {
        timeoutMs: options.timeoutMs || this.settings.defaultTimeoutMs,
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
        ...(env !== undefined ? { env } : {}),
        control,
      });
      for await (const event of events) {
        if (event.type === "output") {
          if (capped) continue;
          // Fails closed: if push throws, the raw chunk is dropped and the stream ends with an error.
          let data = maskers[event.stream].push(event.data);
          observe(event.data.length);
          if (emitted + data.length > limit) {
            data = data.subarray(0, limit - emitted);
            capped = true;
            this.shell.cutCurrent();
          }
          emitted += data.length;
          if (data.length > 0) yield { type: "output", commandId, stream: event.stream, data };
          continue;
        }
        for (const stream of ["stdout", "stderr"] as const) {
          // Flushed also past the cap, where the released bytes are dropped: they must not reach the next command.
          let rest = maskers[stream].flush();
          observe(0);
          if (!capped) {
            if (emitted + rest.length > limit) {
              rest = rest.subarray(0, limit - emitted);
              capped = true;
            }
            emitted += rest.length;
            if (rest.length > 0) yield { type: "output", commandId, stream, data: rest };
          }
        }
        yield {
          type: "command_exited",
          commandId,
          exitCode: event.exitCode,
          durationMs: Math.round(event.durationMs),
          timedOut: event.timedOut,
          truncated: event.truncated || capped,
          limit: event.limit,
        };
      }
    } finally {
      const control = this.controls.get(commandId);
      control?.close();
      this.controls.delete(commandId);
      if (control?.stdin === true) this.rememberExited(commandId);
      this.running--;
      this.lastActive = Date.now();
    }
  }

  /** The running command named `commandId`, or FAILED_PRECONDITION naming it. */
  private runningCommand(commandId: string): CommandControl {
    if (this.ended) throw fail.notFound("conversation_id: the conversation has ended");
    const control = this.controls.get(commandId);
    if (control === undefined) throw fail.precondition(`command_id: ${commandId} is not running`);
    return control;
  }

  /** Writes to the running command's stdin (it must have been started with stdin); RESOURCE_EXHAUSTED when its buffer is full. */
  sendInput(commandId: string, data: Uint8Array, eof: boolean): void {
    // Command ids are never reused, so one that exited is not running again.
    if (!this.ended && this.exitedWithStdin.has(commandId)) {
      if (eof && data.length === 0) return;
      throw fail.precondition(`command_id: ${commandId} has ended; its input is closed`);
    }
    const control = this.runningCommand(commandId);
    if (!control.stdin) throw fail.precondition(`command_id: ${commandId} was not started with stdin`);
    this.lastActive = Date.now();
    if (!control.sendInput(data, eof)) throw fail.exhausted(`data: ${commandId} has not read the input sent so far (at most 1 MiB waits); send again later`);
  }

  private rememberExited(commandId: string): void {
    this.exitedWithStdin.add(commandId);
    // A few are enough for a late eof; the oldest goes first.
    if (this.exitedWithStdin.size > 16) this.exitedWithStdin.delete(this.exitedWithStdin.values().next().value!);
  }

  /** Sends a signal to the running command's processes. */
  signal(commandId: string, signal: NodeJS.Signals): void {
    const control = this.runningCommand(commandId);
    this.lastActive = Date.now();
    control.signal(signal);
  }

  /** Kills every process of the conversation and forgets it. Idempotent. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.shell.close();
    this.onEnd(this);
  }

  /** Whether end() was called. */
  get isEnded(): boolean {
    return this.ended;
  }
}
