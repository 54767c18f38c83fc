// Example-based tests for the streaming masker: each derived form, merging, streaming and passthrough.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createMaskSet, derivedForms, MASK, MAX_PATTERN_LENGTH, type MaskSet, maskAll } from "../server/domain/masker.js";
import { compileAutomaton, gramState, transition } from "../server/domain/masker/automaton.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("latin1");
const utf8 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("utf8");

/** Masks `text` pushed in the given piece sizes (the rest in one piece), returning every push's output. */
function pushes(set: MaskSet, input: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const stream = set.stream();
  const out: Uint8Array[] = [];
  let at = 0;
  for (const size of sizes) {
    out.push(stream.push(input.subarray(at, at + size)));
    at += size;
  }
  out.push(stream.push(input.subarray(at)), stream.end());
  return out;
}

const joined = (parts: readonly Uint8Array[]): string => latin1(Buffer.concat(parts));

/** Asserts `out` is `encoded` with one mask that hides at least the characters [first, last). */
function expectMaskedRange(encoded: string, out: string, first: number, last: number): void {
  const at = out.indexOf(MASK);
  expect(at, out).toBeGreaterThanOrEqual(0);
  const kept = out.slice(0, at);
  const rest = out.slice(at + MASK.length);
  expect(encoded.startsWith(kept) && encoded.endsWith(rest)).toBe(true);
  expect(kept.length).toBeLessThanOrEqual(first);
  expect(encoded.length - rest.length).toBeGreaterThanOrEqual(last);
}

// Hits every escaping rule: URL-unsafe, JSON and HTML specials, a quote of each kind, non-ASCII.
const SECRET = `Sup3r$ecret/Va+lue=&<'">é ok`;

const u4 = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
const percentLower = (s: string): string => s.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
const html = (s: string, quot: string, apos: string): string =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', quot).replaceAll("'", apos);

// Each encoded form built independently of the masker, with Node's own encoders where they exist.
const FORMS: [name: string, form: string][] = [
  ["raw", SECRET],
  ["base64", Buffer.from(SECRET).toString("base64")],
  ["base64 unpadded", Buffer.from(SECRET).toString("base64").replace(/=+$/, "")],
  ["base64url", Buffer.from(SECRET).toString("base64url")],
  ["base64url padded", Buffer.from(SECRET).toString("base64").replaceAll("+", "-").replaceAll("/", "_")],
  ["hex", Buffer.from(SECRET).toString("hex")],
  ["hex, upper case", Buffer.from(SECRET).toString("hex").toUpperCase()],
  ["encodeURIComponent", encodeURIComponent(SECRET)],
  ["percent, lowercase hex", percentLower(encodeURIComponent(SECRET))],
  ["URLSearchParams", new URLSearchParams({ k: SECRET }).toString().slice(2)],
  ["RFC 3986 strict", encodeURIComponent(SECRET).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)],
  ["JSON", JSON.stringify(SECRET).slice(1, -1)],
  ["JSON, Go HTML-safe", JSON.stringify(SECRET).slice(1, -1).replace(/[<>&]/g, u4)],
  ["JSON, ASCII only", JSON.stringify(SECRET).slice(1, -1).replace(/[^\x00-\x7f]/g, u4)],
  ["JSON in JSON", JSON.stringify(JSON.stringify(SECRET).slice(1, -1)).slice(1, -1)],
  ["HTML &quot; &#39;", html(SECRET, "&quot;", "&#39;")],
  ["XML &quot; &apos;", html(SECRET, "&quot;", "&apos;")],
  ["HTML &#34; &#x27;", html(SECRET, "&#34;", "&#x27;")],
];

describe("derived forms", () => {
  const set = createMaskSet([SECRET]);
  it("the forms under test really differ from each other", () => {
    expect(new Set(FORMS.map(([, f]) => f)).size).toBe(FORMS.length);
  });
  for (const [name, form] of FORMS) {
    it(`masks the ${name} form inside surrounding text`, () => {
      const out = maskAll(set, enc(`before ${form} after\n`));
      expect(utf8(out)).toBe(`before ${MASK} after\n`);
    });
  }
});

describe("hex of a longer value", () => {
  it("masks it as xxd -p wraps it (60 digits a line) when the value starts the dump", () => {
    const value = "sk-live-0123456789abcdef0123456789abcdef-CANARY-hex";
    const dump = `${Buffer.from(`${value}\n`).toString("hex").replace(/(.{60})/g, "$1\n")}\n`;
    expect(dump.split("\n")[0]).toHaveLength(60);
    const out = utf8(maskAll(createMaskSet([value]), enc(dump)));
    expect(out).toContain(MASK);
    const digits = Buffer.from(value).toString("hex");
    for (const line of dump.trim().split("\n")) if (digits.includes(line)) expect(out).not.toContain(line);
  });
});

describe("base64 of a longer text", () => {
  const secret = "tok_9f8e7d6c5b4a";
  const set = createMaskSet([secret]);
  // Prefix lengths 0..5 put the secret at each byte alignment twice.
  for (let prefix = 0; prefix < 6; prefix++) {
    for (const alphabet of ["base64", "base64url"] as const) {
      it(`masks every character fixed by the secret (prefix ${prefix}, ${alphabet})`, () => {
        const plain = `${"p".repeat(prefix)}${secret} and more text after it`;
        const encoded = Buffer.from(plain).toString(alphabet);
        // Characters [first, last) carry only the secret's bits; all of them must be gone.
        const first = Math.ceil((prefix * 8) / 6);
        const last = Math.floor(((prefix + secret.length) * 8) / 6);
        expectMaskedRange(encoded, latin1(maskAll(set, enc(encoded))), first, last);
      });
    }
  }
});

describe("multi-line values", () => {
  const value = "-----BEGIN KEY-----\r\nQUJDREVGR0hJSktM\nxy\n-----END KEY-----\n";
  const set = createMaskSet([value]);
  it("masks the whole value, but not the line break at its end", () => {
    expect(utf8(maskAll(set, enc(`key: ${value}done`)))).toBe(`key: ${MASK}\ndone`);
  });
  it("masks each line printed on its own, but not lines shorter than 4", () => {
    const out = utf8(maskAll(set, enc("a QUJDREVGR0hJSktM b\nxy\n-----END KEY----- z\n")));
    expect(out).toBe(`a ${MASK} b\nxy\n${MASK} z\n`);
  });
  it("masks the base64 and JSON forms of a line", () => {
    const line = "-----END KEY-----";
    const encoded = Buffer.from(`x${line}!`).toString("base64");
    expectMaskedRange(encoded, latin1(maskAll(set, enc(encoded))), 2, Math.floor(((1 + line.length) * 8) / 6));
    expect(utf8(maskAll(set, enc(JSON.stringify({ k: value }))))).toBe(`{"k":"${MASK}\\n"}`);
    // Two lines, not the whole value: each line goes, the escaped newline between them stays.
    const twoLines = JSON.stringify({ k: `${line}\nQUJDREVGR0hJSktM` });
    expect(utf8(maskAll(set, enc(twoLines)))).toBe(`{"k":"${MASK}\\n${MASK}"}`);
  });
});

describe("merging", () => {
  const cases: [name: string, secrets: string[], input: string, expected: string][] = [
    ["overlapping", ["abcdef", "defghi"], "xx abcdefghi yy", `xx ${MASK} yy`],
    ["adjacent", ["abcdef", "ghijkl"], "xx abcdefghijkl yy", `xx ${MASK} yy`],
    ["contained", ["abcdefgh", "cdef"], "xx abcdefgh cdef yy", `xx ${MASK} ${MASK} yy`],
    ["repeated", ["s3cr3t"], "s3cr3ts3cr3t s3cr3t", `${MASK} ${MASK}`],
    ["a chain of overlaps", ["aaab", "abbb", "bbbc"], "-aaabbbc-", `-${MASK}-`],
    ["longer pattern still in progress", ["bcde", "abcdefgh"], "abcdefgh abcde", `${MASK} a${MASK}`],
    ["separated by one byte", ["abcdef", "ghijkl"], "abcdef ghijkl", `${MASK} ${MASK}`],
  ];
  for (const [name, secrets, input, expected] of cases) {
    it(`${name}: one mask per run of covered bytes`, () => {
      const set = createMaskSet(secrets);
      expect(latin1(maskAll(set, enc(input)))).toBe(expected);
      expect(joined(pushes(set, enc(input), Array(input.length).fill(1)))).toBe(expected);
    });
  }
});

describe("streaming", () => {
  const secrets = ["hunter2-password", "AKIAIOSFODNN7EXAMPLE", "x-api-key-123"];
  const set = createMaskSet(secrets);
  const input = enc(
    `login hunter2-password ok\n${Buffer.from("AKIAIOSFODNN7EXAMPLE").toString("base64")} key=x-api-key-123x-api-key-123\nhunter2-passwor`,
  );
  const expected = latin1(maskAll(set, input));

  it("the whole-buffer result is what the contract says", () => {
    expect(expected).toBe(`login ${MASK} ok\n${MASK} key=${MASK}\nhunter2-passwor`);
  });
  it("gives the same output when split at every position", () => {
    for (let at = 0; at <= input.length; at++) {
      expect(joined(pushes(set, input, [at])), `split at ${at}`).toBe(expected);
    }
  });
  it("gives the same output when split at every pair of positions", () => {
    for (let a = 0; a <= input.length; a += 3) {
      for (let b = 0; a + b <= input.length; b += 5) {
        expect(joined(pushes(set, input, [a, b])), `split at ${a}+${b}`).toBe(expected);
      }
    }
  });
  it("gives the same output one byte at a time", () => {
    expect(joined(pushes(set, input, Array(input.length).fill(1)))).toBe(expected);
  });
  it("emits a prompt without newline at once", () => {
    const stream = set.stream();
    expect(latin1(stream.push(enc("Password: ")))).toBe("Password: ");
    expect(latin1(stream.push(enc("user@host:~$ ")))).toBe("user@host:~$ ");
  });
  it("emits a finished secret's mask as soon as the next byte shows it cannot grow", () => {
    const stream = set.stream();
    expect(latin1(stream.push(enc("$ echo hunter2-password")))).toBe("$ echo ");
    expect(latin1(stream.push(enc("\n$ ")))).toBe(`${MASK}\n$ `);
  });
  it("holds back exactly the bytes that could still start a secret", () => {
    const stream = set.stream();
    expect(latin1(stream.push(enc("say hunt")))).toBe("say ");
    expect(latin1(stream.push(enc("er2-p")))).toBe("");
    expect(latin1(stream.push(enc("!!")))).toBe("hunter2-p!!");
    expect(latin1(stream.end())).toBe("");
  });
  it("releases held-back bytes unmasked at the end", () => {
    const stream = set.stream();
    expect(latin1(stream.push(enc("AKIAIOSF")))).toBe("");
    expect(latin1(stream.end())).toBe("AKIAIOSF");
  });
  it("keeps streams independent", () => {
    const a = set.stream();
    const b = set.stream();
    expect(latin1(a.push(enc("hunter2-")))).toBe("");
    expect(latin1(b.push(enc("password ")))).toBe("password ");
    expect(latin1(a.push(enc("password ")))).toBe(`${MASK} `);
  });
  it("rejects push after end, and end twice gives nothing", () => {
    const stream = set.stream();
    stream.push(enc("x"));
    stream.end();
    expect(stream.end().length).toBe(0);
    expect(() => stream.push(enc("y"))).toThrow(/after end/);
  });
  it("fails closed: after an internal error every call throws", () => {
    const stream = set.stream();
    expect(() => stream.push(null as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => stream.push(enc("safe"))).toThrow(/failed earlier/);
    expect(() => stream.end()).toThrow(/failed earlier/);
  });
});

describe("passthrough", () => {
  const set = createMaskSet(["correct-horse-battery", "Zm9vYmFyYmF6"]);
  it("returns output without secrets byte for byte, including NUL and invalid UTF-8", () => {
    const input = Uint8Array.from([0, 1, 0xff, 0xfe, 0x80, 0xc3, 0x28, 0xed, 0xa0, 0x80, 10, 13, 0x7f, 0x63, 0x6f, 0x72]);
    expect(Buffer.compare(maskAll(set, input), input)).toBe(0);
    expect(Buffer.compare(Buffer.concat(pushes(set, input, Array(input.length).fill(1))), input)).toBe(0);
  });
  it("masks a secret embedded in binary junk and keeps the junk", () => {
    const input = Buffer.concat([Uint8Array.from([0xff, 0]), enc("correct-horse-battery"), Uint8Array.from([0xc3, 0])]);
    const expected = Buffer.concat([Uint8Array.from([0xff, 0]), enc(MASK), Uint8Array.from([0xc3, 0])]);
    expect(Buffer.compare(maskAll(set, input), expected)).toBe(0);
  });
  it("passes long text through unchanged whatever the chunking", () => {
    const text = enc("2025-01-01T00:00:00Z INFO [worker] GET /api/v1/users?page=2 200 12ms correct-horse-batter\n".repeat(500));
    for (const size of [1, 7, 64, 4096, text.length]) {
      const parts: Uint8Array[] = [];
      const stream = set.stream();
      for (let at = 0; at < text.length; at += size) parts.push(stream.push(text.subarray(at, at + size)));
      parts.push(stream.end());
      expect(Buffer.compare(Buffer.concat(parts), text), `chunks of ${size}`).toBe(0);
    }
  });
  it("with no secrets at all returns every chunk at once", () => {
    const stream = createMaskSet([]).stream();
    expect(latin1(stream.push(enc("anything")))).toBe("anything");
    expect(stream.end().length).toBe(0);
  });
});

describe("values", () => {
  it("reports values shorter than 4 code points as unmasked and leaves them alone", () => {
    const set = createMaskSet(["abc", "", "ab", "abcd", "abc", "😀😀😀", "éèêë"]);
    expect(set.unmaskedValues).toEqual(["abc", "ab", "😀😀😀"]);
    expect(utf8(maskAll(set, enc("abc ab 😀😀😀 abcd éèêë")))).toBe(`abc ab 😀😀😀 ${MASK} ${MASK}`);
  });
  it("honours a custom minLength", () => {
    const set = createMaskSet(["abc", "abcdefgh"], { minLength: 8 });
    expect(set.unmaskedValues).toEqual(["abc"]);
    expect(utf8(maskAll(set, enc("abc abcdefgh")))).toBe(`abc ${MASK}`);
    expect(() => createMaskSet([], { minLength: 0 })).toThrow(RangeError);
  });
  it("masks values of one to three characters when minLength allows it", () => {
    const set = createMaskSet(["x", "yz"], { minLength: 1 });
    expect(set.unmaskedValues).toEqual([]);
    expect(utf8(maskAll(set, enc("axb yz")))).toBe(`a${MASK}b ${MASK}`);
  });
  it("masks non-ASCII values by their UTF-8 bytes, and their base64", () => {
    const value = "pässwörd-ñ-日本";
    const set = createMaskSet([value]);
    const b64 = Buffer.from(value).toString("base64");
    expect(utf8(maskAll(set, enc(`${value} ${b64}`)))).toBe(`${MASK} ${MASK}`);
  });
  it("refuses a value whose encoded forms are too long to compile, before anything runs", () => {
    // "&" is five bytes as "&amp;", so this value's XML form is just over the limit.
    expect(() => createMaskSet(["&".repeat(Math.ceil(MAX_PATTERN_LENGTH / 5) + 1)])).toThrow(RangeError);
  });
  it("masks a 64 KiB value split into small chunks", () => {
    const value = Array.from({ length: 65536 }, (_, i) => String.fromCharCode(33 + ((i * 7919) % 90))).join("");
    const set = createMaskSet([value]);
    expect(set.stats.maxHoldBack).toBeGreaterThanOrEqual(65536);
    const input = enc(`<<${value}>>`);
    expect(latin1(Buffer.concat(pushes(set, input, Array(200).fill(333))))).toBe(`<<${MASK}>>`);
  });
});

// Gaps found against real tools' output (Veil issue 7): each case runs the tool here.
describe("realistic output", () => {
  const run = (cmd: string, args: string[], env: Record<string, string> = {}, input?: Buffer): Buffer => {
    const r = spawnSync(cmd, args, { env: { PATH: process.env.PATH, LANG: "C.UTF-8", ...env }, input, maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
    return r.stdout;
  };
  const bash = (script: string, env: Record<string, string>): Buffer => run("bash", ["-c", script], env);
  const python = (script: string, env: Record<string, string>): Buffer => run("python3", ["-c", script], env);
  /** Every 4-character window of `text` made only of letters and digits: what no encoder changes. */
  const windows = (text: string): string[] =>
    Array.from({ length: Math.max(0, text.length - 3) }, (_, k) => text.slice(k, k + 4)).filter((w) => /^[A-Za-z0-9]{4}$/.test(w));
  /** The output is masked and keeps no 4-character fragment of `form`, even with its line breaks removed. */
  const expectHidden = (set: MaskSet, output: Buffer, form: string, chunk = 7): void => {
    const parts: Uint8Array[] = [];
    for (let at = 0; at < output.length; at += chunk) parts.push(output.subarray(at, at + chunk));
    const out = utf8(maskAll(set, parts));
    expect(out).toContain(MASK);
    const flat = out.replaceAll(MASK, "\0").replaceAll("\n", "");
    for (const w of windows(form)) expect(flat, `fragment ${w} of ${JSON.stringify(form)}`).not.toContain(w);
  };
  const VALUES = [
    `tok3N'x"Y9$zW\\q7 kLm  pQ\tR5s!`,
    "Sup3rSecretPassw0rd/with+base64=chars",
    "pässwörd-Ünïcødé-日本語-😀-Zz9q",
    "ab12\ncd34\nef56GHIJ",
  ];

  for (const [name, script, width] of [
    ["coreutils base64 (76 columns)", "base64", 76],
    ["base64 -w 64", "base64 -w 64", 64],
    ["openssl base64 (64)", "openssl base64", 64],
    ["MIME-style base64 with CRLF line ends", "base64 | sed 's/$/\\r/'", 76],
  ] as const) {
    it(`masks a long value's base64 wrapped by ${name}, at every alignment and line offset`, () => {
      const value = Array.from({ length: 300 }, (_, k) => String.fromCharCode(33 + ((k * 7919) % 94))).join("");
      const set = createMaskSet([value]);
      for (let pad = 0; pad < width; pad += 5) {
        const output = run("sh", ["-c", script], {}, Buffer.from(`${"p".repeat(pad)}${value}!!tail`));
        const inner = Buffer.from(`${"p".repeat(pad)}${value}`).toString("base64").slice(Math.ceil((pad * 8) / 6), Math.floor(((pad + value.length) * 8) / 6));
        expectHidden(set, output, inner);
      }
    });
  }
  it("masks a short value whose base64 straddles a line break (coreutils base64, Python encodebytes)", () => {
    const value = "shortS3cret";
    const set = createMaskSet([value]);
    for (let pad = 45; pad < 60; pad++) {
      const plain = Buffer.from(`${"x".repeat(pad)}${value}${"y".repeat(40)}`);
      const inner = plain.toString("base64").slice(Math.ceil((pad * 8) / 6), Math.floor(((pad + value.length) * 8) / 6));
      expectHidden(set, run("base64", [], {}, plain), inner, 1);
      expectHidden(set, run("python3", ["-c", "import base64,sys; sys.stdout.buffer.write(base64.encodebytes(sys.stdin.buffer.read()))"], {}, plain), inner, 3);
    }
  });

  it("masks percent-encodings as Python and JavaScript write them", () => {
    for (const value of VALUES) {
      const set = createMaskSet([value]);
      const py = python(
        "import os,urllib.parse as u; v=os.environ['V']; print(u.quote(v)); print(u.quote_plus(v)); print(u.quote(v, safe='')); import re; print(re.sub('%[0-9A-F]{2}', lambda m: m.group(0).lower(), u.quote(v)))",
        { V: value },
      );
      const js = [encodeURI(value), encodeURIComponent(value), encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)];
      for (const line of [...py.toString("utf8").trimEnd().split("\n"), ...js]) expectHidden(set, Buffer.from(`x=${line}\n`), value);
    }
  });

  it("masks values as bash quotes them: set -x, printf %q, declare -p, export -p, ${v@Q}, unquoted echo", () => {
    const extra = [`it's "q" $x \`b\` \\ back`, "a\u0001ctl\u007fdel\u001besc", "  lead  and\ttrail  \n"];
    for (const value of [...VALUES, ...extra]) {
      const set = createMaskSet([value]);
      for (const script of ['set -x; : "$V"', 'printf "%q\\n" "$V"', "declare -p V", "export -p | grep ' V='", 'echo "${V@Q}"', "echo $V"]) {
        const output = bash(`export V; { ${script}; } 2>&1`, { V: value });
        expect(output.length, script).toBeGreaterThan(0);
        expectHidden(set, output, value);
      }
    }
  });

  it("masks \\uXXXX escapes, HTML entities and Python's repr", () => {
    for (const value of [...VALUES, "O'Brien & <Sons> \"Ltd\" café"]) {
      const set = createMaskSet([value]);
      const py = python(
        [
          "import os,json,html; v=os.environ['V']",
          "print(json.dumps(v)); print(json.dumps(v, ensure_ascii=False)); print(html.escape(v)); print(repr(v.encode())); print(repr(v))",
          "print(html.escape(v).replace('&#x27;', '&#039;')); print(html.escape(v).replace('&#x27;', '&#39;').replace('&quot;', '&#34;'))",
          // Every character but ASCII letters and digits as \uXXXX (UTF-16 units), as the most eager encoders write it.
          "u16 = lambda c: ''.join('\\\\u%04X' % int.from_bytes(c.encode('utf-16-be')[i:i + 2], 'big') for i in range(0, len(c.encode('utf-16-be')), 2))",
          "print(''.join(c if c.isascii() and c.isalnum() else u16(c) for c in v))",
        ].join("\n"),
        { V: value },
      );
      for (const line of py.toString("utf8").trimEnd().split("\n")) expectHidden(set, Buffer.from(`${line}\n`), value);
    }
  });

  it("masks a value that grep --color=always colours inside", () => {
    const value = "Sup3rSecretPassw0rdXYZ";
    const set = createMaskSet([value]);
    for (const part of ["Secret", "Sup3r", "XYZ", "w0rdX"]) {
      const output = bash('printf "key=%s end\\n" "$V" | grep --color=always "$P"', { V: value, P: part });
      expect(output.includes(0x1b)).toBe(true);
      for (const size of [1, 3, 64]) expectHidden(set, output, value, size);
    }
  });

  it("a value stored with a trailing newline: the value is masked, the newlines after it are kept", () => {
    for (const stored of ["n3wl1ne-value\n", "n3wl1ne-value\r\n"]) {
      const set = createMaskSet([stored]);
      const output = bash('echo "$V"; echo "[$V]"; printf %s "$V" | base64', { V: stored });
      const out = utf8(maskAll(set, output));
      expect(out.startsWith(`${MASK}${stored.endsWith("\r\n") ? "\r" : ""}\n\n[${MASK}`)).toBe(true);
      expect(out).not.toContain("n3wl");
    }
    expect(createMaskSet(["abc\n"]).unmaskedValues).toEqual(["abc\n"]);
  });
});

describe("flush at a command's end", () => {
  const set = createMaskSet(["hunter2-password"]);
  it("releases a short held tail as is and a longer one as a mask, and still masks a secret completed later", () => {
    const stream = set.stream();
    expect(latin1(stream.push(enc("say hun")))).toBe("say ");
    expect(latin1(stream.flush())).toBe("hun");
    expect(latin1(stream.push(enc("ter2-password!")))).toBe(`${MASK}!`);
    expect(latin1(stream.push(enc("x hunter2-")))).toBe("x ");
    expect(latin1(stream.flush())).toBe(MASK);
    expect(latin1(stream.push(enc("password and more")))).toBe(`${MASK} and more`);
    expect(latin1(stream.push(enc("hunter2-password")))).toBe("");
    expect(latin1(stream.flush())).toBe(MASK);
    expect(latin1(stream.end())).toBe("");
  });

  it("keeps the line feed after a long line that ends in a secret (it is transparent, never part of the mask)", () => {
    for (const pad of [10, 45, 64, 200]) {
      const stream = set.stream();
      const line = `${"x".repeat(pad)}hunter2-password\n`;
      const out = latin1(stream.push(enc(line))) + latin1(stream.flush());
      expect(out, `line of ${line.length} bytes`).toBe(`${"x".repeat(pad)}${MASK}\n`);
      expect(latin1(stream.push(enc("next\n"))) + latin1(stream.end())).toBe("next\n");
    }
  });
});

describe("transparent bytes never hide a raw occurrence (property-test counterexamples)", () => {
  /** Pushes `bytes` one at a time: the non-empty outputs by push index, and end()'s output under "end". */
  function byteByByte(secrets: readonly string[], minLength: number, bytes: readonly number[]): Record<string, string> {
    const stream = createMaskSet(secrets, { minLength }).stream();
    const out: Record<string, string> = {};
    bytes.forEach((b, k) => {
      const got = latin1(stream.push(Uint8Array.of(b)));
      if (got !== "") out[k] = got;
    });
    out.end = latin1(stream.end());
    return out;
  }
  const long = (n: number): number[] => Array<number>(n).fill(0x4c);
  const lines = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, k) => [k, "L"]));

  it("masks a secret that starts inside a colour code's parameters (ESC[9K then the rest of 9KsQYEoQ4tC)", () => {
    const out = byteByByte(["ÙûRÃ", "9KsQYEoQ4tC", "3LklYMMMFQChmmZJgGc0QpvPY", "baaaabb"], 3, [...enc("\x1b[9KsQYEoQ4tC")]);
    expect(out).toEqual({ 3: "\x1b[", end: MASK });
  });

  it("masks a secret right before a CR at the end of the output, after a short or a long line", () => {
    const secret = "jQMJsbnXB9O0P5K1KR6A9Wj1F82guEwZJDrnhr";
    expect(byteByByte([secret], 4, [...enc(`x ${secret}\r`)])).toEqual({ 0: "x", 1: " ", [secret.length + 2]: `${MASK}\r`, end: "" });
    // After 64 bytes the CR may start a transparent CRLF: it waits with the mask until the end.
    expect(byteByByte([secret], 4, [...long(64), ...enc(`${secret}\r`)])).toEqual({ ...lines(64), end: `${MASK}\r` });
  });

  it("emits a CR that ends a short line at once: it can never be transparent", () => {
    expect(byteByByte(["aaaa"], 4, [97, 13, ...enc("\x1b[01;31m\x1b[K")])).toEqual({ 1: "a\r", 9: "\x1b[01;31m", 12: "\x1b[K", end: "" });
    expect(byteByByte(["󘅉󞭯񻱸", "\u0013ã", "é\t\t$😀 '\t\né😀 `"], 4, [195, 13, 27, 91, 48, 109])).toEqual({ 1: "\xc3\r", 5: "\x1b[0m", end: "" });
    // "K" ends the second escape and may start a base64 form: held, as a raw occurrence could begin there.
    expect(byteByByte([" aB7\n B`", "¤üKÀä"], 3, [73, 13, 27, 91, 109, 27, 91, 75])).toEqual({ 1: "I\r", 4: "\x1b[m", 7: "\x1b[", end: "K" });
  });

  it("masks a multi-line value whose own line break ends a long line (a transparent LF inside the raw occurrence)", () => {
    for (const secret of ["ab\ncd", "key1\nkey2", "ab\r\ncdef"]) {
      const set = createMaskSet([secret]);
      for (const pad of [60, 62, 64, 70]) {
        const text = enc(`${"L".repeat(pad)}${secret} tail\nxx ${secret}\n`);
        for (const size of [1, 3, 64, 1000]) {
          const chunks = Array.from({ length: Math.ceil(text.length / size) }, (_, k) => text.subarray(k * size, (k + 1) * size));
          expect(latin1(maskAll(set, chunks))).toBe(`${"L".repeat(pad)}${MASK} tail\nxx ${MASK}\n`);
        }
      }
    }
  });

  it("holds a CR that would make a 64-byte line (the CR counted) with a secret before it, not one that would make 63", () => {
    const value = "k3yk3yk3y";
    const line = (n: number): number[] => [...enc(`${"x".repeat(n - value.length)}${value}`)];
    // 63 bytes, then CR: an LF next would be transparent and the value could go on after it.
    expect(byteByByte([value], 4, [...line(63), 13, 10])).toEqual({ ...Object.fromEntries(Array.from({ length: 54 }, (_, k) => [k, "x"])), end: `${MASK}\r\n` });
    // 62 bytes, then CR: never transparent, so the mask and the CR go out with the CR.
    expect(byteByByte([value], 4, [...line(62), 13, 10])).toEqual({ ...Object.fromEntries(Array.from({ length: 53 }, (_, k) => [k, "x"])), 62: `${MASK}\r`, 63: "\n", end: "" });
  });

  it("masks a value ending in ESC when the stream ends on that ESC", () => {
    const set = createMaskSet(["EQdP", "p6LVzbB0W", "򍪂򏿐􈁱㭥", "h`nP\u001b"], { minLength: 1 });
    expect(latin1(maskAll(set, enc("h\\`nP\x1b")))).toBe(MASK);
    expect(byteByByte(["h`nP\u001b"], 4, [...enc("x h`nP\x1b")])).toEqual({ 0: "x", 1: " ", end: MASK });
  });

  it("masks a secret after a long line and colour codes, with a CR and a colour code after it", () => {
    const secret = [0xc2, 0xac, 0x1e, 0x2a, 0xc3, 0xa8, 0x23]; // "¬\u001e*è#"
    const bytes = [...long(64), ...enc("\x1b[01;31m\x1b[K"), ...secret, 13, ...enc("\x1b[0m")];
    const out = byteByByte(["¬\u001e*è#", "\\ \n\t$  😀$a'😀\t  a"], 2, bytes);
    expect(Object.values(out).join("")).toBe(`${"L".repeat(64)}\x1b[01;31m\x1b[K${MASK}\r\x1b[0m`);
    // The CR is decided (not followed by LF) as soon as the escape after it starts.
    expect(out[64 + 11 + 7 + 1]).toBe(`${MASK}\r`);
  });
});

describe("first-gram index (the skip loop's candidates)", () => {
  it("leads every gram to the state four transitions from the root do, and none that starts no pattern", () => {
    const values = Array.from({ length: 40 }, (_, i) => `sk-${i}-${createHash("sha256").update(String(i)).digest("hex").slice(0, 28)}`);
    const patterns = values.flatMap((v) => derivedForms(v, 4));
    const automaton = compileAutomaton(patterns);
    const index = automaton.firstGrams!;
    const walk = (g: number): number => {
      let o = automaton.root;
      for (let k = 24; k >= 0; k -= 8) o = Math.abs(transition(automaton.pool, o, automaton.classOf[(g >>> k) & 0xff]!));
      return automaton.pool[o - 1] === 4 ? o : 0;
    };
    // Every first gram, and every gram one byte away from one: most start nothing, some start another pattern.
    const grams = new Set<number>();
    const firsts = new Set<number>();
    for (const p of patterns) {
      const g = (p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!;
      firsts.add(g);
      grams.add(g);
      for (let k = 0; k < 32; k += 8) for (const b of [0x00, 0x0a, 0x2d, 0x30, 0x61, 0x7a, 0xff]) grams.add((g & ~(0xff << k)) | (b << k));
    }
    let starts = 0;
    for (const g of grams) {
      const expected = walk(g);
      if (expected !== 0) starts++;
      expect(gramState(index, g)).toBe(expected);
    }
    expect(starts).toBe(firsts.size);
    expect(grams.size).toBeGreaterThan(10 * starts);
  });
});
