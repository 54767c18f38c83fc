// `veil run` on the server: streams the command's masked output here, forwards stdin (SendInput) and signals (SignalCommand).
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type ConversationEvent, type StartConversationRequestSchema, Stream, type VeilClient } from "../../index.js";
import { EXIT } from "../io.js";

/** How `command_exited.limit` reads in a sentence. */
const LIMIT_NAMES: Record<string, string> = { processes: "process", memory: "memory", disk: "disk space", file_size: "file size" };
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
// SendInput takes at most 64 KiB a call.
const INPUT_CHUNK = 64 * 1024;

type Request = MessageInitShape<typeof StartConversationRequestSchema>;

/** What the run knows so far: where to send input and signals, and the exit code once it came. */
interface RunState {
  conversationId: string;
  commandId: string;
  exitCode: number;
}

/** Prints one event here; records ids and the exit code. */
async function show(event: ConversationEvent["event"], state: RunState): Promise<void> {
  if (event.case === "started") {
    state.conversationId = event.value.conversationId;
    if (event.value.unmaskedSecrets.length > 0) process.stderr.write(`veil run: too short to mask, shown as is: ${event.value.unmaskedSecrets.join(", ")}\n`);
    // Names only: the command holds placeholders there, which the egress gateway swaps for values.
    if (event.value.placeholders.length > 0) process.stderr.write(`veil run: placeholders (values only via the egress gateway): ${event.value.placeholders.join(", ")}\n`);
  } else if (event.case === "commandStarted") {
    state.commandId = event.value.commandId;
  } else if (event.case === "output") {
    const target = event.value.stream === Stream.STDERR ? process.stderr : process.stdout;
    if (!target.write(event.value.data)) await new Promise((resolve) => target.once("drain", resolve));
  } else if (event.case === "commandExited") {
    if (event.value.truncated) process.stderr.write("veil run: output cut at the server's output limit\n");
    if (event.value.timedOut) process.stderr.write("veil run: timed out\n");
    if (event.value.limit !== "") process.stderr.write(`veil run: ended at the conversation's ${LIMIT_NAMES[event.value.limit] ?? event.value.limit} limit\n`);
    state.exitCode = event.value.timedOut ? 124 : event.value.exitCode;
    state.commandId = "";
  }
}

/**
 * Copies our stdin to the command with SendInput, then sends eof. A full buffer on the server
 * (RESOURCE_EXHAUSTED: the command has not read yet) is retried after a pause; a command that has
 * ended (FAILED_PRECONDITION) simply stops the copy.
 */
async function pumpStdin(client: VeilClient, state: RunState, stop: AbortSignal): Promise<void> {
  const send = async (data: Uint8Array, eof: boolean) => {
    for (let pause = 10; ; pause = Math.min(pause * 2, 500)) {
      try {
        await client.conversations.sendInput({ conversationId: state.conversationId, commandId: state.commandId, data, eof });
        return true;
      } catch (error) {
        if (error instanceof ConnectError && error.code === Code.ResourceExhausted && !stop.aborted) await new Promise((r) => setTimeout(r, pause));
        else if (error instanceof ConnectError && (error.code === Code.FailedPrecondition || error.code === Code.NotFound)) return false;
        else throw error;
      }
    }
  };
  for await (const chunk of process.stdin) {
    if (stop.aborted) return;
    const bytes = chunk as Buffer;
    for (let at = 0; at < bytes.length; at += INPUT_CHUNK) if (!(await send(bytes.subarray(at, at + INPUT_CHUNK), false))) return;
  }
  if (!stop.aborted) await send(new Uint8Array(0), true);
}

/**
 * Runs the command on the server; resolves to its exit code. With `stdin`, the conversation is
 * started without commands and the command runs through RunCommand with a stdin fed from ours.
 * SIGINT/SIGTERM/SIGHUP go to the running command with SignalCommand (its exit code says how it
 * ended); one that comes before the command started, or that cannot be sent, stops the call (130).
 */
export async function runRemote(client: VeilClient, request: Request, stdin: boolean): Promise<number> {
  const abort = new AbortController();
  const stopInput = new AbortController();
  const state: RunState = { conversationId: "", commandId: "", exitCode: EXIT.runnerFailed };
  const onSignal = (signal: (typeof FORWARDED)[number]) => {
    if (state.commandId === "") return abort.abort();
    client.conversations.signalCommand({ conversationId: state.conversationId, commandId: state.commandId, signal }).catch(() => abort.abort());
  };
  for (const signal of FORWARDED) process.on(signal, onSignal);
  try {
    if (!stdin) {
      for await (const { event } of client.startConversation({ ...request, endWhenDone: true }, { signal: abort.signal })) await show(event, state);
      return state.exitCode;
    }
    const command = request.commands?.[0] ?? "";
    for await (const { event } of client.startConversation({ ...request, commands: [], endWhenDone: false }, { signal: abort.signal })) await show(event, state);
    let pumping: Promise<void> | undefined;
    try {
      const events = client.conversations.runCommand({ conversationId: state.conversationId, command, timeoutMs: request.timeoutMs ?? 0, stdin: true }, { signal: abort.signal });
      for await (const { event } of events) {
        await show(event, state);
        if (event.case === "commandStarted") pumping = pumpStdin(client, state, stopInput.signal).catch(() => {});
      }
    } finally {
      stopInput.abort();
      // Our stdin may stay open (a pipe nobody closes): stop reading it, or veil would not exit.
      process.stdin.destroy();
      await pumping;
      if (state.conversationId !== "") await client.conversations.endConversation({ conversationId: state.conversationId }).catch(() => {});
    }
    return state.exitCode;
  } catch (error) {
    if (abort.signal.aborted) return 130;
    // The server cannot run commands at all (no usable sandbox): its message says how to fix that.
    if (error instanceof ConnectError && error.code === Code.FailedPrecondition) {
      process.stderr.write(`veil run: ${error.rawMessage}\n`);
      return EXIT.runnerFailed;
    }
    throw Object.assign(error as Error, { runnerFailed: true });
  } finally {
    for (const signal of FORWARDED) process.off(signal, onSignal);
  }
}
