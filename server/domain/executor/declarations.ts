// Reads the output of bash's `declare -px`: the shell lists its own exported variables, quoted the
// way bash quotes them, without a fork (a fork can fail or stall for 15 s once a command has used up
// its process limit, and the report runs after every command).

/**
 * The exported, set, non-array variables in `declare -px` output, given as latin1 (one char per
 * byte) so that values come back byte for byte and are decoded as UTF-8 only at the end.
 * Lines look like `declare -x NAME="value"`, `declare -x NAME=$'a\nb'` (values with control or,
 * in the C locale, non-ASCII bytes), `declare -x NAME` (exported but unset) and
 * `declare -ax NAME=([0]="v")` (arrays, which no child process sees). Output it cannot read ends the
 * parse with what was read so far.
 */
export function parseExportedDeclarations(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  let at = 0;
  while (at < text.length) {
    if (!text.startsWith("declare -", at)) break;
    const space = text.indexOf(" ", at + 9);
    if (space < 0) break;
    const flags = text.slice(at + 9, space);
    NAME.lastIndex = space + 1;
    const name = NAME.exec(text)?.[0];
    if (name === undefined) break;
    at = space + 1 + name.length;
    if (text[at] === "\n") {
      at += 1;
      continue;
    }
    if (text[at] !== "=") break;
    const word = readWord(text, at + 1);
    if (word === undefined) break;
    if (!flags.includes("a") && !flags.includes("A")) env[name] = NON_ASCII.test(word.value) ? Buffer.from(word.value, "latin1").toString("utf8") : word.value;
    at = word.end + 1;
  }
  return env;
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const NON_ASCII = /[\x80-\xff]/;

/** A shell word up to an unquoted newline: quoted parts decoded, `(`...`)` of arrays read past. */
function readWord(text: string, from: number): Decoded {
  let value = "";
  let at = from;
  while (at < text.length) {
    const c = text[at]!;
    if (c === "\n") return { value, end: at };
    if (c === '"') {
      const part = readDoubleQuoted(text, at + 1);
      if (part === undefined) return undefined;
      value += part.value;
      at = part.end + 1;
    } else if (c === "$" && text[at + 1] === "'") {
      const part = readAnsiQuoted(text, at + 2);
      if (part === undefined) return undefined;
      value += part.value;
      at = part.end + 1;
    } else if (c === "'") {
      const end = text.indexOf("'", at + 1);
      if (end < 0) return undefined;
      value += text.slice(at + 1, end);
      at = end + 1;
    } else if (c === "\\") {
      value += text[at + 1] ?? "";
      at += 2;
    } else {
      value += c;
      at += 1;
    }
  }
  return undefined;
}

type Decoded = { value: string; end: number } | undefined;

/** A quoted part from `from` (just past the opening quote) to the unescaped `close`; `end` is at `close`. */
function readQuoted(text: string, from: number, close: string, readEscape: (text: string, at: number) => Decoded): Decoded {
  let value = "";
  let at = from;
  for (;;) {
    const quote = text.indexOf(close, at);
    const slash = text.indexOf("\\", at);
    if (quote < 0) return undefined;
    if (slash < 0 || quote < slash) return { value: value + text.slice(at, quote), end: quote };
    value += text.slice(at, slash);
    const decoded = readEscape(text, slash + 1);
    if (decoded === undefined) return undefined;
    value += decoded.value;
    at = decoded.end;
  }
}

/** Inside "...": a backslash escapes only $ ` " \ (bash's sh_double_quote adds one before each). */
function readDoubleQuoted(text: string, from: number): Decoded {
  return readQuoted(text, from, '"', (text, at) => {
    const next = text[at];
    if (next === undefined) return undefined;
    return { value: DOUBLE_QUOTE_ESCAPABLE.includes(next) ? next : `\\${next}`, end: at + 1 };
  });
}

const DOUBLE_QUOTE_ESCAPABLE = '$`"\\';

/** Inside $'...': the escapes bash's ansic_quote writes (and the rest of the $'...' set). */
function readAnsiQuoted(text: string, from: number): Decoded {
  return readQuoted(text, from, "'", readAnsiEscape);
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: "\x07", b: "\b", e: "\x1b", E: "\x1b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v",
  "\\": "\\", "'": "'", '"': '"', "?": "?",
};

function readAnsiEscape(text: string, at: number): Decoded {
  const c = text[at];
  if (c === undefined) return undefined;
  const simple = SIMPLE_ESCAPES[c];
  if (simple !== undefined) return { value: simple, end: at + 1 };
  const octal = /^[0-7]{1,3}/.exec(text.slice(at, at + 3))?.[0];
  if (octal !== undefined) return { value: String.fromCharCode(Number.parseInt(octal, 8) & 0xff), end: at + octal.length };
  if (c === "x") {
    const hex = /^[0-9A-Fa-f]{1,2}/.exec(text.slice(at + 1, at + 3))?.[0];
    if (hex !== undefined) return { value: String.fromCharCode(Number.parseInt(hex, 16)), end: at + 1 + hex.length };
  }
  if (c === "c" && text[at + 1] !== undefined) return { value: String.fromCharCode(text.charCodeAt(at + 1) & 0x1f), end: at + 2 };
  return { value: `\\${c}`, end: at + 1 };
}
