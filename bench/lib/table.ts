// Bench results as data, and the markdown table they print as.

/** One measured line of a bench table. */
export interface BenchRow {
  what: string;
  perSecond: number;
  /** Absent where a latency means nothing (e.g. a bulk load). */
  p50Ms?: number;
  p99Ms?: number;
  /** The rate relative to this row's reference (the ceiling or a baseline). */
  ratio?: number;
  /** Human-readable target, e.g. ">= 0.7 of ceiling"; absent for reference rows. */
  target?: string;
  /** Whether the target was met; absent when the row has no target. */
  pass?: boolean;
}

/** A bench section: a title, its rows, and notes on how it was measured. */
export interface BenchTable {
  title: string;
  rows: BenchRow[];
  notes: string[];
}

/** A row's target: `value >= min`, shown as `label`. */
export function atLeast(value: number, min: number, label: string): Pick<BenchRow, "target" | "pass"> {
  // NaN: the reference was not measured in this run (a partial run), so there is nothing to judge.
  return Number.isNaN(value) ? { target: label } : { target: label, pass: value >= min };
}

const COLUMNS = ["what", "req/s", "p50 ms", "p99 ms", "ratio", "target", "pass/fail"] as const;

/** Renders a table as GitHub markdown, numbers right-aligned. */
export function formatTable(table: BenchTable): string {
  const cells = table.rows.map((r) => [
    r.what,
    Math.round(r.perSecond).toLocaleString("en-US"),
    ms(r.p50Ms),
    ms(r.p99Ms),
    r.ratio === undefined ? "" : r.ratio.toFixed(2),
    r.target ?? "",
    r.pass === undefined ? "" : r.pass ? "pass" : "**FAIL**",
  ]);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const right = new Set([1, 2, 3, 4]);
  const line = (row: readonly string[]) =>
    `| ${row.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (right.has(i) ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
  const notes = table.notes.map((n) => `- ${n}`);
  return [`### ${table.title}`, "", line(COLUMNS), rule, ...cells.map(line), ...(notes.length > 0 ? ["", ...notes] : [])].join("\n");
}

function ms(value: number | undefined): string {
  if (value === undefined) return "";
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}
