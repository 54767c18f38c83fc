// Whether dist/ was built after every source change: the bin and the benches run the compiled code only then.
import { existsSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The project root (this file lives in bin/). */
export const root = fileURLToPath(new URL("..", import.meta.url));

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
export function distIsFresh() {
  try {
    const built = statSync(`${root}/dist/.built`).mtimeMs;
    // A packed install ships dist/ without the sources: then dist/ is all there is.
    return ["server", "client", "gen", "console"].every((dir) => !existsSync(`${root}/${dir}`) || newest(`${root}/${dir}`) < built);
  } catch {
    return false;
  }
}
