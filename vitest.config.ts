import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts", "simulators/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Two files at a time: most tests wait on brokers, simulators and child processes, not
    // the CPU, and every wait is on a condition. On the 2-core CI machine vitest's default (one
    // worker there) ran the suite one file after the other: 8.5 min; two take about 6.
    maxWorkers: 2,
    globalSetup: ["test/support/global-setup.ts"],
    reporters: ["default"],
  },
});
