// What an MCP tool hands back: a command's masked output cut to a size a model can take, and API errors as one clear line.
import { Code, ConnectError } from "@connectrpc/connect";
import type { CommandResult } from "../../client/index.js";
import { codeName } from "../../client/cli/io.js";

/**
 * Characters of each stream a tool result carries at most. Hosts cap what they pass to the
 * model (tens of thousands of tokens), and the head and the tail of an output are what an
 * agent needs: the middle is cut, with a note saying how much. The server's own output cap
 * (`--output-limit-bytes`) applies before this one.
 */
export const OUTPUT_CAP_CHARS = 20_000;

/** What run_command returns as structuredContent (the names are the contract's). */
export interface RunResult {
  [key: string]: unknown;
  stdout: string;
  stderr: string;
  exit_code: number;
  timed_out: boolean;
  truncated: boolean;
  conversation_id: string;
}

/** Keeps the first and last halves of the cap, replacing the middle with a note. */
export function capText(text: string, cap = OUTPUT_CAP_CHARS): { text: string; cut: number } {
  if (text.length <= cap) return { text, cut: 0 };
  const head = Math.floor(cap / 2);
  const tail = cap - head;
  const cut = text.length - cap;
  return { text: `${text.slice(0, head)}\n[... ${cut} characters cut by veil mcp ...]\n${text.slice(text.length - tail)}`, cut };
}

/** One command's result as structuredContent plus the readable text block. */
export function runResult(result: CommandResult, conversationId: string): { structured: RunResult; text: string } {
  // Masked bytes decode as UTF-8; a cut multi-byte character becomes U+FFFD, never a guess.
  const stdout = capText(result.stdoutText);
  const stderr = capText(result.stderrText);
  const structured: RunResult = {
    stdout: stdout.text,
    stderr: stderr.text,
    exit_code: result.exitCode,
    timed_out: result.timedOut,
    truncated: result.truncated || stdout.cut > 0 || stderr.cut > 0,
    conversation_id: conversationId,
  };
  const notes = [
    result.timedOut ? "timed out (the command was ended)" : `exit code ${result.exitCode}`,
    result.truncated ? "output cut at the server's output limit" : "",
    stdout.cut + stderr.cut > 0 ? `middle of the output cut to ${OUTPUT_CAP_CHARS} characters per stream` : "",
    result.limit !== "" ? `ended at the conversation's ${result.limit} limit` : "",
  ].filter(Boolean);
  const parts = [`${notes.join("; ")}. conversation_id: ${conversationId} (pass it to run_command to continue in this shell)`];
  if (stdout.text !== "") parts.push(`stdout:\n${stdout.text}`);
  if (stderr.text !== "") parts.push(`stderr:\n${stderr.text}`);
  if (stdout.text === "" && stderr.text === "") parts.push("(no output)");
  return { structured, text: parts.join("\n") };
}

/** A failure as a tool error: the API's own message with its code name, never a stack trace. */
export function toolError(error: unknown): { isError: true; content: [{ type: "text"; text: string }] } {
  return { isError: true, content: [{ type: "text", text: describe(error) }] };
}

/** A tool error of our own making (an argument the API never saw). */
export function refusal(message: string): ReturnType<typeof toolError> {
  return toolError(new ConnectError(message, Code.InvalidArgument));
}

function describe(error: unknown): string {
  if (error instanceof ConnectError) {
    const hint = error.code === Code.Unavailable ? " (the Veil server could not be reached)" : "";
    return `${codeName(error.code)}: ${error.rawMessage}${hint}`;
  }
  // Only the first line: a message, never a stack.
  return (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "error";
}
