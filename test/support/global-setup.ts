/**
 * Runs once around the whole test run:
 * - builds dist/ once before the tests, so that end-to-end tests run the CLI users run. Type
 *   errors do not stop the tests here (tsc still emits): `npm test` type-checks on its own first.
 * - gives the run one temporary folder: TMPDIR points into it for every test worker and every
 *   process the tests start (brokers, gateways, socat, python), and teardown removes it, so a
 *   test that forgets its temp dir, or a run cut short, leaves nothing behind in /tmp.
 *   The folder is 0755 so that a broker which drops privileges can still reach its files.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export default function setup(): () => void {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const runDir = mkdtempSync(join(tmpdir(), "plc2mqtt-test-"));
  chmodSync(runDir, 0o755);
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = runDir;
  spawnSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, "-p", "tsconfig.json"], {
    cwd: root,
    stdio: "ignore",
  });
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
  };
}
