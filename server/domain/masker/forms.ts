// Derives every byte pattern that reveals a secret value: the value, its lines, and their common encodings.

/** Length in Unicode code points, the unit the "shorter than N characters" rules count in. */
export function codePointLength(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

/**
 * The deduplicated byte patterns to mask for `value`, none shorter than `minLength` bytes:
 * the value and each line of a multi-line value (lines of at least `minLength` code points),
 * each also base64-encoded (standard and URL-safe, padded and not, at every byte alignment),
 * percent-encoded, JSON-escaped and XML-escaped. Distinct strings that encode to the same
 * bytes (lone surrogates) may both be listed. The caller decides whether `value` itself is
 * long enough to be masked.
 */
export function derivedForms(value: string, minLength: number): Uint8Array[] {
  // Most forms of a plain token equal the token: collect strings first, encode each once.
  const forms = new Set<string>();
  const bases = [value];
  const lines = value.split(/\r\n|\n|\r/);
  if (lines.length > 1) {
    for (const line of lines) {
      if (codePointLength(line) >= minLength) bases.push(line);
    }
  }
  for (const base of bases) {
    const bytes = Buffer.from(base, "utf8");
    forms.add(base);
    for (const form of base64Forms(bytes)) forms.add(form);
    if (NEEDS_PERCENT.test(base)) for (const form of percentForms(bytes)) forms.add(form);
    if (NEEDS_JSON.test(base)) for (const form of jsonForms(base)) forms.add(form);
    if (NEEDS_XML.test(base)) for (const form of xmlForms(base)) forms.add(form);
  }
  const patterns: Uint8Array[] = [];
  for (const form of forms) {
    const bytes = Buffer.from(form, "utf8");
    if (bytes.length >= minLength) patterns.push(bytes);
  }
  return patterns;
}

// Text without these characters is its own percent, JSON and XML form.
const NEEDS_PERCENT = /[^A-Za-z0-9._-]/;
const NEEDS_JSON = /[^\x20-\x7e]|["\\/<>&]/;
const NEEDS_XML = /[&<>"']/;

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

// Which bytes each percent-encoder leaves alone.
const URI_COMPONENT_SAFE = asciiSet("A-Za-z0-9", "-_.!~*'()"); // encodeURIComponent
const RFC3986_SAFE = asciiSet("A-Za-z0-9", "-_.~"); // Python quote(safe=""), Go QueryEscape
const FORM_SAFE = asciiSet("A-Za-z0-9", "*-._"); // URLSearchParams (WHATWG urlencoded)

// Each encoder as a byte-to-text table, in both hex cases; the form encoders write space as "+".
const PERCENT_TABLES = (
  [
    [URI_COMPONENT_SAFE, false],
    [RFC3986_SAFE, false],
    [RFC3986_SAFE, true],
    [FORM_SAFE, true],
  ] as const
).flatMap(([safe, plus]) => [percentTable(safe, plus, true), percentTable(safe, plus, false)]);

/** Percent-encodings of `bytes` as encodeURIComponent, RFC 3986 and form encoders write them, in both hex cases. */
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
 * `\u003c` and friends), Python's ensure_ascii and PHP's (`\/`), and JSON nested once more.
 */
export function jsonForms(text: string): string[] {
  const js = JSON.stringify(text).slice(1, -1);
  const u = (ch: string): string => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
  // Without the u flag the regexp sees UTF-16 units, so astral characters become surrogate pairs, as encoders write them.
  const ascii = js.replace(/[^\x00-\x7f]/g, u);
  return [
    js,
    js.replace(/[<>&\u2028\u2029]/g, u),
    ascii,
    ascii.replace(/\\u[0-9a-f]{4}/g, (esc) => `\\u${esc.slice(2).toUpperCase()}`),
    ascii.replaceAll("/", "\\/"),
    JSON.stringify(js).slice(1, -1),
  ];
}

/** XML/HTML escapes of `text`: text-only (& < >) and attribute-safe with each common spelling of the quotes. */
export function xmlForms(text: string): string[] {
  const base = text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
  const forms = [base];
  for (const quot of ["&quot;", "&#34;"]) {
    for (const apos of ["&apos;", "&#39;", "&#x27;"]) {
      forms.push(base.replaceAll('"', quot).replaceAll("'", apos));
    }
  }
  return forms;
}
