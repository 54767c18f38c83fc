// Conversation helpers for the typed client: collecting a run's events (works in Node and browsers).
import type { ConversationEvent, Started } from "../gen/veil/v1/conversation_pb.js";
import { Stream } from "../gen/veil/v1/conversation_pb.js";

/** The outcome of one command, with its (masked) output. */
export interface CommandResult {
  commandId: string;
  command: string;
  stdout: Uint8Array;
  stderr: Uint8Array;
  exitCode: number;
  durationMs: number;
  timedOut: boolean;
  truncated: boolean;
  /** The resource limit that ended the command ("processes", "memory", "disk", "file_size"), "" when none. */
  limit: string;
  /** Output as UTF-8 text. */
  readonly stdoutText: string;
  readonly stderrText: string;
}

/** Everything a stream said, gathered. */
export interface CollectedConversation {
  started?: Started;
  commands: CommandResult[];
}

/** Reads a StartConversation or RunCommand stream to its end and gathers each command's output and exit. */
export async function collect(events: AsyncIterable<ConversationEvent>): Promise<CollectedConversation> {
  const out: CollectedConversation = { commands: [] };
  const pending = new Map<string, { command: string; stdout: Uint8Array[]; stderr: Uint8Array[] }>();
  for await (const { event } of events) {
    switch (event.case) {
      case "started":
        out.started = event.value;
        break;
      case "commandStarted":
        pending.set(event.value.commandId, { command: event.value.command, stdout: [], stderr: [] });
        break;
      case "output": {
        const p = pending.get(event.value.commandId);
        p?.[event.value.stream === Stream.STDERR ? "stderr" : "stdout"].push(event.value.data);
        break;
      }
      case "commandExited": {
        const p = pending.get(event.value.commandId);
        const stdout = concat(p?.stdout ?? []);
        const stderr = concat(p?.stderr ?? []);
        out.commands.push({
          commandId: event.value.commandId,
          command: p?.command ?? "",
          stdout,
          stderr,
          exitCode: event.value.exitCode,
          durationMs: Number(event.value.durationMs),
          timedOut: event.value.timedOut,
          truncated: event.value.truncated,
          limit: event.value.limit,
          stdoutText: new TextDecoder().decode(stdout),
          stderrText: new TextDecoder().decode(stderr),
        });
        break;
      }
    }
  }
  return out;
}

/** Joins chunks without Node's Buffer, so the helper runs in browsers too. */
function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
