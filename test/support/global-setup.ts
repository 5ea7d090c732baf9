/** Builds dist/ once before the tests, so that end-to-end tests run the CLI users run. */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  execFileSync(
    process.execPath,
    [`${root}node_modules/typescript/bin/tsc`, "-p", "tsconfig.json"],
    {
      cwd: root,
      stdio: "inherit",
    },
  );
}
