#!/usr/bin/env node
// Compiles server, client and gen into dist/, bundles the web console into dist/console/, and stamps it, so the `veil` bin starts without a TypeScript loader.
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
} catch (error) {
  // `npm ci --omit=dev` runs `prepare` (--optional) without the dev toolchain: the bin then runs the sources through tsx.
  if (!process.argv.includes("--optional")) throw error;
  process.stderr.write("veil build: typescript is not installed (npm ci --omit=dev?): skipped; bin/veil.mjs runs the sources through tsx\n");
  process.exit(0);
}
rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
if (result.status !== 0) process.exit(result.status ?? 1);
// Imported here, not at the top: with --omit=dev (above) the console's toolchain may be absent too.
const { buildConsole } = await import("./build-console.mjs");
await buildConsole(fileURLToPath(new URL("../dist/console", import.meta.url)));
// Written last: the bin trusts dist/ only when this stamp is newer than every source file.
writeFileSync(new URL("../dist/.built", import.meta.url), `${new Date().toISOString()}\n`);
