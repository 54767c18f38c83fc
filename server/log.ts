// Structured logs: one JSON object per line on stderr. Callers pass fields, never values.

/** Severity of a log line. */
export type Level = "debug" | "info" | "warn" | "error";

/** Where log lines go; tests swap the sink to capture them. */
export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
}

/** Writes JSON lines to a stream (stderr by default, a turn's lines at a time: batchedStderr). */
export function createLogger(write: (line: string) => void = batchedStderr()): Logger {
  return {
    log(level, msg, fields = {}) {
      write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
    },
  };
}

/**
 * Describes an unexpected error for a log line without its message: messages of
 * errors from parsers and libraries can quote their input, and input can be a value.
 */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { error: typeof error };
  const frames = (error.stack ?? "").split("\n").filter((l) => l.trimStart().startsWith("at ")).slice(0, 6);
  return { error: error.name, code: (error as { code?: unknown }).code, frames: frames.map((f) => f.trim()) };
}

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** The logger without the lines below `level` (`--log-level`). */
export function atLevel(logger: Logger, level: Level): Logger {
  const min = RANK[level];
  if (min === RANK.debug) return logger;
  return { log: (lineLevel, msg, fields) => (RANK[lineLevel] >= min ? logger.log(lineLevel, msg, fields) : undefined) };
}

let stderrWriter: ((line: string) => void) | undefined;

/**
 * Writes the lines of one event-loop turn to stderr together, on setImmediate, and what is left when
 * the process exits. Why: one access line per call was one write(2) per call; 32 calls in flight end
 * in a handful of turns. A line waits at most for the turn it was logged in; only a SIGKILL in that
 * window loses it (the audit trail, not this log, is what is kept durably). One writer per process.
 */
export function batchedStderr(): (line: string) => void {
  if (stderrWriter !== undefined) return stderrWriter;
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    process.stderr.write(text);
  };
  process.on("exit", flush);
  stderrWriter = (line) => {
    if (pending.push(line) === 1) setImmediate(flush);
  };
  return stderrWriter;
}
