// Regenerates gen/ from proto/ and fails when the result differs from what is committed.
import { execFileSync } from "node:child_process";

execFileSync("npx", ["buf", "generate"], { stdio: "inherit" });
const drift = execFileSync("git", ["status", "--porcelain", "--", "gen"], { encoding: "utf8" });
if (drift.trim() !== "") {
  process.stdout.write(drift);
  process.stderr.write("gen/ is out of date: run 'npm run generate' and commit the result\n");
  process.exit(1);
}
console.log("gen/ matches proto/");
