// `veil inject`: renders a template's {{ secrets.NAME[.FIELD] }} expressions here, like `op inject`, into a 0600 file or stdout.
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, lstatSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { parseTemplate, referencedNames } from "../../../server/domain/templates.js";
import { type Command, parse } from "../command.js";
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from "../connection.js";
import { EXIT, readStdin, UsageError } from "../io.js";
import { readSecrets, render, syntaxFailure } from "../local-secrets.js";

const help = `Usage: veil inject [-i TEMPLATE] [-o OUT] [--session S]

Renders a template here, like \`op inject\`: every {{ secrets.NAME }} or
{{ secrets.NAME.FIELD }} (spaces optional) becomes the secret's value, read with
GetSecret, so you must be allowed to read it (an admin token, or an agent listed with
--reader). Any other text, veil://... included, is copied as it is. A template naming a
secret that is missing or that you may not read, or holding a bad expression, writes
nothing and names the secret (or the line and column).

OUT is written with mode 0600 through a temporary file and a rename, so it is never
half written; an OUT that is a symbolic link is refused.

Options:
  -i, --in-file TEMPLATE   the template (default: stdin)
  -o, --out-file OUT       write here (default: stdout)
  --session S              read secrets in session S, over the tenant-wide ones
${CONNECTION_HELP}`;

/** Writes `text` to `path` with mode 0600: a fresh temporary file beside it, synced, then renamed over it. */
function writeAtomically(path: string, text: string): void {
  let existing: ReturnType<typeof lstatSync> | undefined;
  try {
    existing = lstatSync(path);
  } catch {
    existing = undefined;
  }
  if (existing?.isSymbolicLink()) throw new UsageError(`-o ${path}: is a symbolic link; refusing to write through it`);
  if (existing !== undefined && !existing.isFile()) throw new UsageError(`-o ${path}: not a regular file`);
  const temp = join(dirname(path), `.${basename(path)}.veil-${randomBytes(6).toString("hex")}`);
  // wx: never reuses (or follows) something already there; 0600 from the first byte.
  const fd = openSync(temp, "wx", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

export const injectCommand: Command = {
  name: "inject",
  summary: "render a template's secret expressions into a file (0600) or stdout",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      ...CONNECTION_OPTIONS,
      "in-file": { type: "string", short: "i" },
      "out-file": { type: "string", short: "o" },
      session: { type: "string" },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (the template is -i FILE)`);
    const file = values["in-file"];
    let text: string;
    try {
      text = file === undefined || file === "-" ? await readStdin() : readFileSync(file, "utf8");
    } catch (error) {
      throw new UsageError(`-i ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }
    const where = file === undefined || file === "-" ? "stdin" : file;
    let parts: ReturnType<typeof parseTemplate>;
    try {
      parts = parseTemplate(text, where);
    } catch (error) {
      syntaxFailure(error);
    }
    const client = await connect(values);
    // Everything is read and rendered before the first byte is written anywhere.
    const secrets = await readSecrets(client, values.session ?? "", referencedNames(parts));
    const rendered = render(parts, secrets, where);
    const out = values["out-file"];
    if (out === undefined || out === "-") process.stdout.write(rendered);
    else writeAtomically(out, rendered);
    return EXIT.ok;
  },
};
