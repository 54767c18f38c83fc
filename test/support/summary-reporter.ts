// Prints one plain closing line, "Tests: N passed, N failed, N skipped", that any CI log reader understands;
// under VEIL_TEST_REQUIRE_ALL=1 (set by .ci/run, which installs every package) a skipped test fails the run.
import type { Reporter, TestModule } from "vitest/node";

/** Counts test cases across modules once the run ends. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const skippedNames: string[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else {
          skipped++;
          skippedNames.push(`${module.moduleId}: ${test.fullName}`);
        }
      }
      if (module.state() === "failed" && [...module.children.allTests()].length === 0) failed++;
    }
    process.stdout.write(`\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
    if (process.env.VEIL_TEST_REQUIRE_ALL === "1" && skipped > 0) {
      // CI installed every package the suite needs, so a skip there is a missing install step, not a pass.
      process.stderr.write(`VEIL_TEST_REQUIRE_ALL: ${skipped} test(s) skipped:\n${skippedNames.map((n) => `  ${n}`).join("\n")}\n`);
      process.exitCode = 1;
    }
  }
}
