#!/usr/bin/env node
// Entry point of the `veil` bin: runs the TypeScript CLI through tsx, no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../client/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
