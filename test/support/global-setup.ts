/**
 * Builds dist/ once before the tests, so that end-to-end tests run the CLI users run. Type
 * errors do not stop the tests here (tsc still emits): `npm test` type-checks on its own first.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  spawnSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, "-p", "tsconfig.json"], {
    cwd: root,
    stdio: "ignore",
  });
}
