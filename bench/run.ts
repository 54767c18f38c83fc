// `npm run bench`: runs the bench sections in order and prints each one's markdown table.
import { parseArgs } from "node:util";
import { type BenchTable, formatTable } from "./lib/table.js";

/**
 * Every section, in run order; adding a bench is one line. Imports are lazy so a
 * section loads only its own dependencies, and `--only` skips the rest entirely.
 * A section answers a BenchTable (printed, and its missed targets counted) or
 * already-formatted markdown.
 */
const SECTIONS: Record<string, () => Promise<BenchTable | string>> = {
  vault: async () => (await import("./vault.js")).runVaultBench(),
  conversation: async () => (await import("./conversation.js")).runConversationBench(),
  masker: async () => {
    const masker = await import("./masker.js");
    return masker.formatMaskerTable(await masker.runMaskerBench());
  },
  egress: async () => (await import("./egress.js")).runEgressBench(),
  store: async () => (await import("./store.js")).runStoreBench(),
  scale: async () => (await import("./scale.js")).runScaleBench(),
  gap: async () => (await import("./gap.js")).runGapBench(),
};

const USAGE = `usage: npm run bench [-- --only SECTION[,SECTION...]] [--check]
  --only   run only these sections (${Object.keys(SECTIONS).join(", ")}); may repeat
  --check  exit 1 when a target is missed (default: report only, benches are noisy)`;

/** Parses the flags, runs the chosen sections, prints their tables. */
async function main(argv: string[]): Promise<number> {
  let values: { only?: string[]; check?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { only: { type: "string", multiple: true }, check: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const chosen = values.only?.flatMap((o) => o.split(",")).map((o) => o.trim()).filter((o) => o !== "") ?? Object.keys(SECTIONS);
  const unknown = chosen.filter((name) => !(name in SECTIONS));
  if (unknown.length > 0) {
    console.error(`unknown section ${unknown.join(", ")}\n${USAGE}`);
    return 2;
  }

  let missed = 0;
  let failed = 0;
  for (const name of chosen) {
    const started = performance.now();
    try {
      const table = await SECTIONS[name]!();
      if (typeof table !== "string") missed += table.rows.filter((r) => r.pass === false).length;
      console.log(`${typeof table === "string" ? table : formatTable(table)}\n`);
      console.error(`bench: ${name} took ${Math.round((performance.now() - started) / 1000)} s`);
    } catch (error) {
      // One broken section should not hide the others' results.
      failed++;
      console.error(`bench: ${name} failed:`, error);
    }
  }
  if (missed > 0) console.error(`bench: ${missed} target(s) missed`);
  return failed > 0 || (values.check === true && missed > 0) ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
