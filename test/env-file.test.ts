// `--env-file` parsing: the dotenv syntax users bring from docker, dotenv and `op run`, and errors that name file:line.
import { describe, expect, it } from "vitest";
import { parseEnvFile } from "../client/cli/env-file.js";
import { UsageError } from "../client/cli/io.js";

const parse = (text: string) => Object.fromEntries(parseEnvFile(text, "app.env").map((e) => [e.key, e.value]));

describe("env files", () => {
  const cases: [string, string, Record<string, string>][] = [
    ["plain, spaces around = and the value trimmed", "A=1\nB = two words  \n", { A: "1", B: "two words" }],
    ["export, comments, blank lines, CRLF and a BOM", "\uFEFF# top\r\n\r\nexport A=1\r\n  # indented comment\n\texport\tB=2\n", { A: "1", B: "2" }],
    ["inline comment after whitespace; a # inside a word stays", "A=x # note\nB=a#b\nC=#\n", { A: "x", B: "a#b", C: "" }],
    ["empty values, also quoted", 'A=\nB=""\nC=\'\'\n', { A: "", B: "", C: "" }],
    ["single quotes are literal", "A='$HOME \\n # not a comment'\n", { A: "$HOME \\n # not a comment" }],
    ["double quotes know the usual escapes; others stay", 'A="a\\nb\\t\\"c\\" \\\\ \\$x \\q"\n', { A: 'a\nb\t"c" \\ $x \\q' }],
    ["quoted values may span lines and carry a comment after", 'KEY="-----BEGIN-----\nabc\n-----END-----" # pem\nNEXT=1\n', { KEY: "-----BEGIN-----\nabc\n-----END-----", NEXT: "1" }],
    ["references and expressions are kept for resolution", 'K=veil://DB/password\nU="https://x/?k={{ secrets.API }}"\n', { K: "veil://DB/password", U: "https://x/?k={{ secrets.API }}" }],
    ["no $VAR expansion; a later key wins", "A=$B\nA=${C}-2\n", { A: "${C}-2" }],
    ["= inside the value", "URL=postgres://u@h/db?sslmode=require\n", { URL: "postgres://u@h/db?sslmode=require" }],
  ];
  for (const [name, text, expected] of cases) it(name, () => expect(parse(text)).toEqual(expected));

  const bad: [string, string, string][] = [
    ["no = at all", "A=1\nJUSTAWORD\n", "app.env:2: expected '=' after JUSTAWORD"],
    ["a key starting with a digit", "1A=x\n", "app.env:1: expected KEY=VALUE (KEY: letters, digits and _, not starting with a digit)"],
    ["an unclosed quote names the line it opens on", 'A=1\nB="never closed\nC=3\n', 'app.env:2: the " that opens this value is never closed'],
    ["text after a closing quote", "A='x' y\n", "app.env:1: unexpected text after the closing ' of A"],
    ["a dash in a key", "MY-KEY=1\n", "app.env:1: expected '=' after MY"],
  ];
  for (const [name, text, message] of bad) {
    it(`refuses ${name}, naming file:line and never the line's text`, () => {
      let caught: unknown;
      try {
        parseEnvFile(`${text}SECRET=canary-ENV-2f7e\n`, "app.env");
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(UsageError);
      expect((caught as Error).message).toBe(message);
    });
  }
});
