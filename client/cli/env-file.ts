// Reads dotenv files (`--env-file`): KEY=VALUE lines, `export`, comments, quotes; a bad line names file:line.
import { readFileSync } from "node:fs";
import { UsageError } from "./io.js";

/** One variable of an env file, with where it was written (for error messages). */
export interface EnvEntry {
  key: string;
  value: string;
  /** `FILE:LINE`, the line the entry starts on. */
  where: string;
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*/;
const ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\", $: "$" };

/**
 * Parses dotenv text. Rules (those of docker's and dotenv's common core):
 * - blank lines and lines starting with `#` are skipped; `export ` before a key is allowed;
 * - `KEY=VALUE`, spaces around `=` allowed; an empty VALUE is the empty string;
 * - unquoted values are trimmed, and a ` #` starts a comment;
 * - `'single'` quotes are literal; `"double"` quotes know \n \r \t \" \\ \$ (other
 *   backslashes stay as they are); quoted values may span lines;
 * - nothing is expanded (`$OTHER` stays as written; secrets are named with veil:// or {{ }}).
 * Anything else is a UsageError naming `file:line` and the rule, never the line's text.
 */
export function parseEnvFile(text: string, file: string): EnvEntry[] {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const entries: EnvEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    const line = lines[i]!.trimStart();
    if (line === "" || line.startsWith("#")) continue;
    const body = /^export\s+/.test(line) ? line.replace(/^export\s+/, "") : line;
    const key = KEY.exec(body)?.[0];
    if (key === undefined) throw new UsageError(`${where}: expected KEY=VALUE (KEY: letters, digits and _, not starting with a digit)`);
    const afterKey = body.slice(key.length).trimStart();
    if (!afterKey.startsWith("=")) throw new UsageError(`${where}: expected '=' after ${key}`);
    const raw = afterKey.slice(1).trimStart();
    const quote = raw[0];
    if (quote === '"' || quote === "'") {
      const { value, endLine, rest } = quoted(lines, i, lines[i]!.length - raw.length + 1, quote, where);
      if (rest.trim() !== "" && !rest.trimStart().startsWith("#")) throw new UsageError(`${where}: unexpected text after the closing ${quote} of ${key}`);
      entries.push({ key, value, where });
      i = endLine;
    } else {
      entries.push({ key, value: raw.replace(/(^|\s+)#.*$/, "").trim(), where });
    }
  }
  return entries;
}

/** Reads a quoted value starting just after its opening quote; it may run over several lines. */
function quoted(lines: readonly string[], start: number, column: number, quote: string, where: string) {
  let value = "";
  let line = start;
  let at = column;
  for (;;) {
    const text = lines[line]!;
    while (at < text.length) {
      const char = text[at]!;
      if (char === quote) return { value, endLine: line, rest: text.slice(at + 1) };
      if (char === "\\" && quote === '"' && at + 1 < text.length) {
        const next = text[at + 1]!;
        value += ESCAPES[next] ?? `\\${next}`;
        at += 2;
        continue;
      }
      value += char;
      at++;
    }
    if (line + 1 >= lines.length) throw new UsageError(`${where}: the ${quote} that opens this value is never closed`);
    value += "\n";
    line++;
    at = 0;
  }
}

/** Reads each file in order; a later definition of a key wins, as with repeated `--env`. */
export function readEnvFiles(files: readonly string[]): EnvEntry[] {
  const byKey = new Map<string, EnvEntry>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new UsageError(`--env-file ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }
    for (const entry of parseEnvFile(text, file)) {
      byKey.delete(entry.key);
      byKey.set(entry.key, entry);
    }
  }
  return [...byKey.values()];
}
