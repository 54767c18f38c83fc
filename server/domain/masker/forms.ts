// Derives every byte pattern that reveals a secret value: the value, its lines, and their common encodings.

/** Length in Unicode code points, the unit the "shorter than N characters" rules count in. */
export function codePointLength(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

/** `value` without the line breaks at its ends: `echo value | veil secret set` stores a trailing newline. */
export function trimBreaks(value: string): string {
  return value.replace(/^[\r\n]+|[\r\n]+$/g, "");
}

/**
 * The deduplicated byte patterns to mask for `value`, none shorter than `minLength` bytes:
 * the value (without line breaks at its ends) and each line of a multi-line value (lines of
 * at least `minLength` code points), each also base64-encoded (standard and URL-safe, padded
 * and not, at every byte alignment), hex (both cases, and as `xxd -p` wraps it), percent-encoded, JSON-escaped, HTML/XML-escaped,
 * shell-quoted and as Python's repr, each as the masker's view sees it (see stream.ts).
 * Distinct strings that encode to the same bytes (lone surrogates) may both be listed. The
 * caller decides whether `value` itself is long enough to be masked.
 */
export function derivedForms(value: string, minLength: number): Uint8Array[] {
  // Most forms of a plain token equal the token: collect strings first, encode each once.
  const forms = new Set<string>();
  const trimmed = trimBreaks(value);
  const bases = [trimmed];
  const lines = trimmed.split(/\r\n|\n|\r/);
  if (lines.length > 1) {
    for (const line of lines) {
      if (codePointLength(line) >= minLength) bases.push(line);
    }
  }
  for (const base of bases) {
    const bytes = Buffer.from(base, "utf8");
    forms.add(base);
    for (const form of base64Forms(bytes)) forms.add(form);
    for (const form of hexForms(bytes)) forms.add(form);
    if (NEEDS_PERCENT.test(base)) for (const form of percentForms(bytes)) forms.add(form);
    if (NEEDS_JSON.test(base)) for (const form of jsonForms(base)) forms.add(form);
    if (NEEDS_XML.test(base)) for (const form of xmlForms(base)) forms.add(form);
    if (NEEDS_SHELL.test(base)) for (const form of shellForms(base)) forms.add(form);
    if (NEEDS_REPR.test(base)) for (const form of reprForms(base)) forms.add(form);
  }
  const patterns = new Map<string, Uint8Array>();
  for (const form of forms) {
    for (const bytes of viewForms(Buffer.from(form, "utf8"))) {
      if (bytes.length >= minLength) patterns.set(bytes.toString("latin1"), bytes);
    }
  }
  return [...patterns.values()];
}

const TRANSPARENT_LINE = 64; // stream.ts
const ESCAPES = /\x1b\[[0-9;]{0,32}[mK]/g;

/**
 * A form as the scan's view holds it: without the bytes the view drops (stream.ts), none
 * at its ends. An LF is dropped (with a CR before it) after a line of 64 bytes; whether the
 * first LF is depends on what precedes the form on its line when that line is shorter, so
 * then both variants are listed.
 */
export function viewForms(form: Buffer): Buffer[] {
  const text = form.toString("latin1");
  const drop: number[] = [];
  let undecided = -1;
  let lastLf = -1;
  for (let q = text.indexOf("\n"); q >= 0; q = text.indexOf("\n", q + 1)) {
    if (lastLf >= 0 ? q - lastLf - 1 >= TRANSPARENT_LINE : q >= TRANSPARENT_LINE) drop.push(q);
    else if (lastLf < 0) undecided = q;
    lastLf = q;
  }
  const without = (at: readonly number[]): string => {
    let out = "";
    let from = 0;
    for (const q of at) {
      const cut = q > 0 && text[q - 1] === "\r" ? q - 1 : q;
      out += text.slice(from, cut);
      from = q + 1;
    }
    return out + text.slice(from);
  };
  const variants = [without(drop)];
  if (undecided >= 0) variants.push(without([undecided, ...drop]));
  return variants.map((v) => Buffer.from(v.replace(ESCAPES, "").replace(/^[\r\n]+|[\r\n]+$/g, ""), "latin1"));
}

// Text without these characters is its own percent, JSON, XML, shell and repr form.
const NEEDS_PERCENT = /[^A-Za-z0-9._-]/;
const NEEDS_JSON = /[^A-Za-z0-9]/;
const NEEDS_XML = /[&<>"'\u0080-\uffff]/;
const NEEDS_SHELL = /[^A-Za-z0-9_./=:@%+-]/;
const NEEDS_REPR = /[^\x20-\x7e]|['\\]/;

/**
 * Base64 of `bytes` as it appears inside the base64 of any longer text, at each of the three
 * byte alignments: only the characters whose 6 bits all come from `bytes` (the way GitHub
 * Actions' runner masks), plus the complete tail, padded and not, for text that ends with
 * the value. Each in the standard and the URL-safe alphabet.
 */
export function base64Forms(bytes: Uint8Array): string[] {
  const forms: string[] = [];
  const bits = bytes.length * 8;
  for (let offset = 0; offset < 3; offset++) {
    const shifted = new Uint8Array(offset + bytes.length);
    shifted.set(bytes, offset);
    const full = Buffer.from(shifted.buffer).toString("base64");
    const first = Math.ceil((offset * 8) / 6);
    const lastFull = Math.floor((offset * 8 + bits) / 6);
    const tail = full.slice(first);
    const inner = full.slice(first, lastFull);
    const unpadded = tail.replace(/=+$/, "");
    for (const form of [inner, unpadded, tail]) {
      forms.push(form, form.replaceAll("+", "-").replaceAll("/", "_"));
    }
  }
  return forms;
}

/** `xxd -p` writes 30 bytes (60 hex digits) a line. */
const XXD_PLAIN_COLUMNS = 60;

/**
 * Hex of the bytes, lower and upper case (`od -An -tx1 | tr -d ' \n'`, Python's `.hex()`,
 * `hexdump -ve '1/1 "%.2x"'`), and lower case wrapped as `xxd -p` wraps it when the value starts
 * its dump (`printf %s "$KEY" | xxd -p`). A value further into a wrapped dump is not found: its
 * line breaks could fall at any of 30 places.
 */
export function hexForms(bytes: Uint8Array): string[] {
  const hex = Buffer.from(bytes).toString("hex");
  const forms = [hex, hex.toUpperCase()];
  if (hex.length > XXD_PLAIN_COLUMNS) forms.push(hex.match(new RegExp(`.{1,${XXD_PLAIN_COLUMNS}}`, "g"))!.join("\n"));
  return forms;
}

// Which bytes each percent-encoder leaves alone.
const URI_COMPONENT_SAFE = asciiSet("A-Za-z0-9", "-_.!~*'()"); // encodeURIComponent
const RFC3986_SAFE = asciiSet("A-Za-z0-9", "-_.~"); // Python quote(safe=""), Go QueryEscape
const FORM_SAFE = asciiSet("A-Za-z0-9", "*-._"); // URLSearchParams (WHATWG urlencoded)
const PATH_SAFE = asciiSet("A-Za-z0-9", "-_.~/"); // Python urllib.parse.quote (safe="/" by default)
const URI_SAFE = asciiSet("A-Za-z0-9", "-_.!~*'();,/?:@&=+$#"); // encodeURI

// Each encoder as a byte-to-text table, in both hex cases; the form encoders write space as "+".
const PERCENT_TABLES = (
  [
    [URI_COMPONENT_SAFE, false],
    [RFC3986_SAFE, false],
    [RFC3986_SAFE, true], // Python quote_plus, Go QueryEscape
    [PATH_SAFE, false],
    [URI_SAFE, false],
    [FORM_SAFE, true],
  ] as const
).flatMap(([safe, plus]) => [percentTable(safe, plus, true), percentTable(safe, plus, false)]);

/** Percent-encodings of `bytes` as encodeURIComponent, encodeURI, RFC 3986, Python quote/quote_plus and form encoders write them, in both hex cases. */
export function percentForms(bytes: Uint8Array): string[] {
  return PERCENT_TABLES.map((table) => {
    let out = "";
    for (const b of bytes) out += table[b];
    return out;
  });
}

function percentTable(safe: Uint8Array, spaceAsPlus: boolean, upper: boolean): string[] {
  return Array.from({ length: 256 }, (_, b) => {
    if (safe[b] === 1) return String.fromCharCode(b);
    if (b === 0x20 && spaceAsPlus) return "+";
    const hex = b.toString(16).padStart(2, "0");
    return `%${upper ? hex.toUpperCase() : hex}`;
  });
}

function asciiSet(ranges: string, extra: string): Uint8Array {
  const set = new Uint8Array(256);
  for (const range of ranges.match(/.-./g) ?? []) {
    for (let c = range.charCodeAt(0); c <= range.charCodeAt(2); c++) set[c] = 1;
  }
  for (const ch of extra) set[ch.charCodeAt(0)] = 1;
  return set;
}

/**
 * JSON string escapes of `text` without the quotes: JSON.stringify's, Go's (HTML-safe
 * `\u003c` and friends), Python's ensure_ascii (astral characters as surrogate pairs), .NET's
 * (`\u0022`, `\u002B`, upper-case hex), Gson's, PHP's (`\/`), every non-alphanumeric as
 * `\uXXXX` in either case, and JSON nested once more.
 */
export function jsonForms(text: string): string[] {
  const js = JSON.stringify(text).slice(1, -1);
  return [
    js,
    jsonEscape(text, /[<>&\u2028\u2029]/, false),
    jsonEscape(text, /[^\x00-\x7f]/, false),
    jsonEscape(text, /[^\x00-\x7f]/, true),
    jsonEscape(text, /[^\x00-\x7f]/, false).replaceAll("/", "\\/"),
    jsonEscape(text, /[^\x00-\x21\x23-\x25\x28-\x2a\x2c-\x3b\x3d\x3f-\x5f\x61-\x7e]/, true),
    jsonEscape(text, /[<>&='\u2028\u2029]/, false),
    jsonEscape(text, /[^A-Za-z0-9]/, false),
    jsonEscape(text, /[^A-Za-z0-9]/, true),
    JSON.stringify(js).slice(1, -1),
  ];
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** A JSON string body: UTF-16 units matching `asU` as `\uXXXX`, else the short escapes, other control characters as `\u00XX`. */
function jsonEscape(text: string, asU: RegExp, upper: boolean): string {
  const u = (unit: number): string => {
    const hex = unit.toString(16).padStart(4, "0");
    return `\\u${upper ? hex.toUpperCase() : hex}`;
  };
  let out = "";
  for (let k = 0; k < text.length; k++) {
    const ch = text[k]!;
    if (asU.test(ch)) out += u(ch.charCodeAt(0));
    else if (SHORT_ESCAPES[ch] !== undefined) out += SHORT_ESCAPES[ch];
    else if (ch < " ") out += u(ch.charCodeAt(0));
    else out += ch;
  }
  return out;
}

/**
 * XML/HTML escapes of `text`: text-only (& < >) and attribute-safe with each common spelling
 * of the quotes (`&quot; &#34; &#034; &#x22;` and `&apos; &#39; &#039; &#x27;`), and .NET's
 * WebUtility.HtmlEncode, which also writes non-ASCII characters as `&#NNN;`.
 */
export function xmlForms(text: string): string[] {
  const base = text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
  const forms = [base];
  for (const quot of ["&quot;", "&#34;", "&#034;", "&#x22;"]) {
    for (const apos of ["&apos;", "&#39;", "&#039;", "&#x27;"]) {
      forms.push(base.replaceAll('"', quot).replaceAll("'", apos));
    }
  }
  let dotnet = "";
  for (const ch of forms[2]!) dotnet += ch.codePointAt(0)! >= 0xa0 ? `&#${ch.codePointAt(0)};` : ch;
  forms.push(dotnet);
  return forms;
}

/**
 * How bash prints `text`: single-quoted with `'\''` (`set -x`, `${v@Q}`), double-quoted
 * (`declare -p`, `export -p`), backslash-escaped (`printf %q`), as `$'...'` when it holds
 * control characters (all three then; non-ASCII raw or as octal bytes), and word-split by
 * an unquoted `echo $v` (whitespace runs as one space, none at the ends).
 */
export function shellForms(text: string): string[] {
  const forms = [text.replaceAll("'", "'\\''"), text.replace(/["$`\\]/g, "\\$&")];
  if (/[\x00-\x1f\x7f]/.test(text)) forms.push(ansiC(text, false), ansiC(text, true));
  else forms.push(printfQ(text));
  forms.push(text.split(/[ \t\n]+/).filter((w) => w !== "").join(" "));
  return forms;
}

const ANSI_C: Record<number, string> = { 7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 27: "E", 39: "'", 92: "\\" };

/** The body of bash's `$'...'` quoting (ansic_quote): named escapes, other control bytes as `\ooo`. */
function ansiC(text: string, octalNonAscii: boolean): string {
  let out = "";
  for (const b of Buffer.from(text, "utf8")) {
    if (ANSI_C[b] !== undefined) out += `\\${ANSI_C[b]}`;
    else if (b < 0x20 || b === 0x7f || (octalNonAscii && b >= 0x80)) out += `\\${b.toString(8).padStart(3, "0")}`;
    else out += String.fromCharCode(b);
  }
  return Buffer.from(out, "latin1").toString("utf8");
}

/** bash's `printf %q` of text without control characters (sh_backslash_quote). */
function printfQ(text: string): string {
  let out = "";
  let k = 0;
  for (const ch of text) {
    if (" \t'\"\\|&;()<>!{}*[?]^$`,".includes(ch) || ((ch === "~" || ch === "#") && k === 0)) out += "\\";
    out += ch;
    k++;
  }
  return out;
}

/** Python's repr of `text` as UTF-8 bytes (`b'caf\xc3\xa9'`) and as a str, without the quotes. */
export function reprForms(text: string): string[] {
  // repr picks double quotes for text holding ' but no ", and then leaves the ' alone.
  const quote = text.includes("'") && !text.includes('"') ? "" : "'";
  const escaped = (unit: number, raw: string): string => {
    if (unit === 0x5c) return "\\\\";
    if (unit === 0x27 && quote !== "") return "\\'";
    if (unit === 9) return "\\t";
    if (unit === 10) return "\\n";
    if (unit === 13) return "\\r";
    if (unit < 0x20 || unit === 0x7f || (unit >= 0x80 && unit < 0xa0)) return `\\x${unit.toString(16).padStart(2, "0")}`;
    return raw;
  };
  let bytes = "";
  for (const b of Buffer.from(text, "utf8")) bytes += b >= 0x80 ? `\\x${b.toString(16)}` : escaped(b, String.fromCharCode(b));
  let str = "";
  for (const ch of text) str += escaped(ch.codePointAt(0)!, ch);
  return [bytes, str];
}
