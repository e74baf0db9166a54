// Test runner settings: every test file under test/, real processes (forks), and a closing count line for CI.
import { defineConfig } from "vitest/config";
import { CountReporter } from "./test/support/count-reporter.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    pool: "forks",
    // Most files wait on child processes and servers, not the CPU: two at once halve the wall time
    // on the 2-core CI machine (vitest's default is one fewer than the cores).
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default", new CountReporter()],
  },
});
