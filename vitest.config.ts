// Test runner settings: every test file under test/, real processes (forks), and a closing count line for CI.
import { defineConfig } from "vitest/config";
import { CountReporter } from "./test/support/count-reporter.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default", new CountReporter()],
  },
});
