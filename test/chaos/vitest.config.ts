/**
 * `npm run test:chaos`: the chaos suites at full length (CHAOS_KILLS, CHAOS_TORN_ROUNDS set by
 * the script), the full-disk gateway run (*.chaos.ts, too long for `npm test`), and the
 * journal's full-disk tests, and nothing else. Same setup as the main config (the global
 * setup builds dist/ and gives the run its own TMPDIR). Not mergeConfig: it would append
 * these files to the main include list and run the whole suite.
 */
import { defineConfig } from "vitest/config";
import base from "../../vitest.config.ts";

export default defineConfig({
  test: {
    ...base.test,
    include: [
      "test/chaos/**/*.test.ts",
      "test/chaos/**/*.chaos.ts",
      "test/journal/full-disk-commit.test.ts",
      "test/journal/full-disk.test.ts",
    ],
    testTimeout: 3_600_000,
  },
});
