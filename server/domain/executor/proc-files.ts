// Reading /proc's small per-process files cheaply: a conversation's start and end scan every process on the host several times.
import { closeSync, openSync, readdirSync, readSync } from "node:fs";

/**
 * Why this exists: readFileSync makes a buffer and a string per file and asks for the file's size
 * first (an fstat /proc always answers with 0). A scan reads one small file per process on the host,
 * on the event loop, 4 to 5 times per conversation, so with hundreds of processes that was tens of
 * ms of blocking. One reused buffer halves a scan's time (bench/README.md, "Conversation stream").
 */
const buffer = Buffer.allocUnsafe(8192);

/** The file's text (latin1: /proc's fields are ASCII, a comm's bytes stay bytes), or undefined when it cannot be read (the process is gone). */
export function readProcFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  try {
    const size = readSync(fd, buffer, 0, buffer.length, null);
    if (size < buffer.length) return buffer.toString("latin1", 0, size);
    // Longer than the buffer (a status with very many groups): read on, in pieces.
    const parts = [Buffer.from(buffer.subarray(0, size))];
    for (let more = readSync(fd, buffer, 0, buffer.length, null); more > 0; more = readSync(fd, buffer, 0, buffer.length, null)) {
      parts.push(Buffer.from(buffer.subarray(0, more)));
    }
    return Buffer.concat(parts).toString("latin1");
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Every pid listed in /proc now. Throws when /proc cannot be listed (callers fall back to what needs no scan). */
export function processIdsNow(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    const first = name.charCodeAt(0);
    if (first >= 48 && first <= 57) pids.push(Number(name));
  }
  return pids;
}

/** The value of one `Key:\tvalue` line of a /proc status file (without the key), or undefined. */
export function statusLine(status: string, key: string): string | undefined {
  const marker = `\n${key}:`;
  const at = status.startsWith(`${key}:`) ? 0 : status.indexOf(marker);
  if (at < 0) return undefined;
  const from = at === 0 ? key.length + 1 : at + marker.length;
  const end = status.indexOf("\n", from);
  return status.slice(from, end < 0 ? undefined : end).trim();
}
