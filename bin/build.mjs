#!/usr/bin/env node
// Compiles server, client and gen into dist/, bundles the web console into dist/console/, and stamps it, so the `veil` bin starts without a TypeScript loader.
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { buildConsole } from "./build-console.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
if (result.status !== 0) process.exit(result.status ?? 1);
await buildConsole(fileURLToPath(new URL("../dist/console", import.meta.url)));
// Written last: the bin trusts dist/ only when this stamp is newer than every source file.
writeFileSync(new URL("../dist/.built", import.meta.url), `${new Date().toISOString()}\n`);
