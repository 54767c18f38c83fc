// The version of the `veil` package, from its package.json (found from source and from dist/ alike).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Walks up from this module to the package.json named "veil"; "unknown" if there is none. */
export function veilVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "veil" && pkg.version !== undefined) return pkg.version;
    }
    if (dirname(dir) === dir) return "unknown";
  }
}
