import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ControlParser, type ShellState } from "../server/domain/executor/control-channel.js";
import { parseExportedDeclarations } from "../server/domain/executor/declarations.js";

// The shell's state report is bash's own `declare -px`; these compare the parse with what bash holds.
const dir = mkdtempSync(join(tmpdir(), "veil-declarations-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Exports each NAME=VALUE (raw bytes, read NUL-separated so any byte but NUL survives), runs `extra`, returns `declare -px`. */
function declarePx(entries: Buffer[], locale: string, extra = ""): string {
  const file = join(dir, `entries-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, Buffer.concat(entries.flatMap((entry) => [entry, Buffer.from([0])])));
  // Read in the C locale (in UTF-8, `read` takes a NUL after a lone lead byte into the character), listed in `locale`.
  const script = `while IFS= read -r -d '' e; do builtin export "$e"; done < ${file}; LC_ALL=${locale}; ${extra}\nbuiltin declare -px`;
  const result = spawnSync("bash", ["--norc", "--noprofile", "-c", script], { env: { LC_ALL: "C", PATH: process.env.PATH! } });
  expect(result.status, result.stderr.toString()).toBe(0);
  return result.stdout.toString("latin1");
}

/** What bash's own variables add to the list, left out of comparisons. */
const BASH_OWN = new Set(["PWD", "OLDPWD", "SHLVL", "PATH", "LC_ALL", "_"]);
function ours(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !BASH_OWN.has(name)));
}

/** A deterministic pseudo-random generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe("parseExportedDeclarations", () => {
  for (const locale of ["C", "C.UTF-8"]) {
    it(`reads back every byte value bash holds (random values, locale ${locale})`, () => {
      const next = random(locale.length);
      const tricky = [..."\n\"'$`\\(){}[]=!* \t\x1b\x7f"].map((c) => c.charCodeAt(0));
      const values = Array.from({ length: 300 }, () =>
        Buffer.from(
          Array.from({ length: Math.floor(next() * 40) }, () =>
            next() < 0.5 ? tricky[Math.floor(next() * tricky.length)]! : 1 + Math.floor(next() * 255),
          ),
        ),
      );
      values.push(Buffer.from("héllo wörld ✓ 🔑"), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from(""));
      const entries = values.map((value, i) => Buffer.concat([Buffer.from(`V_${i}=`), value]));
      const parsed = ours(parseExportedDeclarations(declarePx(entries, locale)));
      const expected = Object.fromEntries(values.map((value, i) => [`V_${i}`, value.toString("utf8")]));
      expect(parsed).toEqual(expected);
    });
  }

  it("skips arrays, associative arrays and exported-but-unset names, and keeps the attributes' values", () => {
    const extra = [
      `declare -ax ARR=(1 "two words" $'x\\ny')`,
      `declare -Ax MAP=(["a b"]=1 [$'k\\n']="v\\"" [plain]=')')`,
      "export UNSET_ONE",
      "declare -ix NUMBER=6*7",
      "declare -ux UPPER=shout",
      "declare -rx FIXED=ro",
      "export TARGET=t; declare -nx REF=TARGET",
    ].join("; ");
    const parsed = ours(parseExportedDeclarations(declarePx([Buffer.from("AFTER=last")], "C", extra)));
    // A child process sees REF=TARGET (the nameref's own value), as `env` would show.
    expect(parsed).toEqual({ AFTER: "last", NUMBER: "42", UPPER: "SHOUT", FIXED: "ro", TARGET: "t", REF: "TARGET" });
  });

  it("cannot be fooled into a variable by a value that looks like a declaration", () => {
    const forged = 'x"\ndeclare -x FORGED="1"\n';
    const parsed = ours(parseExportedDeclarations(declarePx([Buffer.from(`REAL=${forged}`), Buffer.from(`TWO=$'\ndeclare -x ALSO=2`)], "C")));
    expect(parsed).toEqual({ REAL: forged, TWO: "$'\ndeclare -x ALSO=2" });
  });

  it("stops at output it cannot read, keeping what came before", () => {
    expect(parseExportedDeclarations('declare -x A="1"\ndeclare -x B="unterminated\n')).toEqual({ A: "1" });
    expect(parseExportedDeclarations('declare -x A="1"\nsomething else\ndeclare -x C="3"\n')).toEqual({ A: "1" });
    expect(parseExportedDeclarations("")).toEqual({});
  });
});

describe("ControlParser: the shell's report after each command", () => {
  const record = (...fields: string[]) => Buffer.from(`${fields.join("\0")}\0\0`, "latin1");

  it("reads exit code, cwd and the declare -px field, cut anywhere between reads", () => {
    const seen: ShellState[] = [];
    const parser = new ControlParser(1024, (state) => seen.push(state));
    const bytes = Buffer.concat([record("R3", "C/work/a b", 'Edeclare -x A="1"\ndeclare -x B=$\'x\\ny\'\n'), record("R0", "C/w", "E")]);
    for (let i = 0; i < bytes.length; i += 3) parser.push(bytes.subarray(i, i + 3));
    expect(seen).toEqual([
      { exitCode: 3, cwd: "/work/a b", env: { A: "1", B: "x\ny" } },
      { exitCode: 0, cwd: "/w", env: {} },
    ]);
  });

  it("reads the name-by-name fields a shell with declare disabled sends after an empty E", () => {
    const seen: ShellState[] = [];
    new ControlParser(1024, (state) => seen.push(state)).push(record("R0", "C/w", "E", "A=1", "B=x=y"));
    expect(seen).toEqual([{ exitCode: 0, cwd: "/w", env: { A: "1", B: "x=y" } }]);
  });

  it("over the size limit keeps exit code and cwd, says nothing of the variables, and reads the next record whole", () => {
    const seen: ShellState[] = [];
    const parser = new ControlParser(64, (state) => seen.push(state));
    parser.push(record("R1", "C/w", `Edeclare -x HUGE="${"a".repeat(500)}"\n`));
    parser.push(record("R0", "C/v", 'Edeclare -x SMALL="s"\n'));
    expect(seen).toEqual([
      { exitCode: 1, cwd: "/w", env: undefined },
      { exitCode: 0, cwd: "/v", env: { SMALL: "s" } },
    ]);
  });
});
