#!/usr/bin/env node
// Entry point of the `veil` bin: the compiled CLI when dist/ is up to date, else the TypeScript sources through tsx.
import { existsSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Newest modification time under a folder (sources only). */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/**
 * dist/ starts twice as fast, but a stale build would run code that is not the code in the
 * tree (tests and `npm start` included): it is used only when built after every source change.
 */
function distIsFresh() {
  try {
    const built = statSync(`${root}/dist/.built`).mtimeMs;
    // A packed install ships dist/ without the sources: then dist/ is all there is.
    return ["server", "client", "gen", "console"].every((dir) => !existsSync(`${root}/${dir}`) || newest(`${root}/${dir}`) < built);
  } catch {
    return false;
  }
}

let main;
if (process.env.VEIL_FROM_SOURCE !== "1" && distIsFresh()) {
  ({ main } = await import("../dist/client/cli/main.js"));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../client/cli/main.ts"));
}
process.exitCode = await main(process.argv.slice(2));
