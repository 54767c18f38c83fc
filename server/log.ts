// Structured logs: one JSON object per line on stderr. Callers pass fields, never values.

/** Severity of a log line. */
export type Level = "debug" | "info" | "warn" | "error";

/** Where log lines go; tests swap the sink to capture them. */
export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
}

/** Writes JSON lines to a stream (stderr by default). */
export function createLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
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
