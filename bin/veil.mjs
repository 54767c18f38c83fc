#!/usr/bin/env node
// Entry point of the `veil` bin: the compiled CLI when dist/ is up to date, else the TypeScript sources through tsx.
import { distIsFresh } from "./dist-fresh.mjs";

let main;
if (process.env.VEIL_FROM_SOURCE !== "1" && distIsFresh()) {
  ({ main } = await import("../dist/client/cli/main.js"));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../client/cli/main.ts"));
}
process.exitCode = await main(process.argv.slice(2));
