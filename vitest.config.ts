import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    // Process tests (CLI, crash, rotation) spawn servers and shells; on two shared cores they need headroom.
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Network and process tests spawn servers and shells; two cores, so keep it modest.
    pool: "forks",
    maxWorkers: 2,
  },
});
