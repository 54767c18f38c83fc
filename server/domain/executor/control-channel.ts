// Parses the shell's control channel (fd 3): after each command, its exit code, cwd and exported variables.

import { parseExportedDeclarations } from "./declarations.js";

/** What the shell reported after a command (or at start-up). */
export interface ShellState {
  exitCode: number;
  /** Undefined when PWD was unset. */
  cwd: string | undefined;
  /** Exported variables; undefined when the report was over the size limit (keep the previous snapshot). */
  env: Record<string, string> | undefined;
}

/**
 * Records are NUL-separated fields ended by an empty field: `R<exit code>`, `C<cwd>`, `E` followed by
 * the shell's `declare -px`, then `NAME=VALUE` for each exported variable when that builtin was
 * disabled and the shell listed them itself (bash strings cannot hold NUL, so the framing is
 * unambiguous).
 */
export class ControlParser {
  private fields: Buffer[] = [];
  private partial: Buffer[] = [];
  private fieldBytes = 0;
  private recordBytes = 0;
  private overflow = false;

  constructor(
    private readonly limitBytes: number,
    private readonly onRecord: (state: ShellState) => void,
  ) {}

  /** Feeds bytes read from fd 3. */
  push(chunk: Buffer): void {
    let from = 0;
    for (let nul = chunk.indexOf(0, from); nul >= 0; nul = chunk.indexOf(0, from)) {
      this.collect(chunk.subarray(from, nul));
      this.endField();
      from = nul + 1;
    }
    this.collect(chunk.subarray(from));
  }

  private collect(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.fieldBytes += bytes.length;
    this.recordBytes += bytes.length;
    // A huge exported variable must not grow server memory: past the limit only the framing is tracked.
    if (this.recordBytes > this.limitBytes) this.overflow = true;
    if (!this.overflow || this.fields.length < 2) this.partial.push(Buffer.from(bytes));
  }

  private endField(): void {
    const field = Buffer.concat(this.partial);
    const empty = this.fieldBytes === 0;
    this.partial = [];
    this.fieldBytes = 0;
    if (!empty) {
      if (!this.overflow || this.fields.length < 2) this.fields.push(field);
      return;
    }
    const [code = "", cwd = "", declarations = "", ...vars] = this.fields.map((field, i) => field.toString(i === 2 ? "latin1" : "utf8"));
    const env = declarations.startsWith("E") ? parseExportedDeclarations(declarations.slice(1)) : {};
    for (const entry of vars) {
      const eq = entry.indexOf("=");
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    const exitCode = code.startsWith("R") ? Number.parseInt(code.slice(1), 10) : Number.NaN;
    this.onRecord({
      exitCode: Number.isNaN(exitCode) ? 1 : exitCode,
      cwd: cwd.length > 1 ? cwd.slice(1) : undefined,
      env: this.overflow ? undefined : env,
    });
    this.fields = [];
    this.recordBytes = 0;
    this.overflow = false;
  }
}
