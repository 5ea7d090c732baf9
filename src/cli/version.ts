import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function findVersion(): string {
  for (const path of ["../../package.json", "../../../package.json"]) {
    try {
      return (require(path) as { version: string }).version;
    } catch {
      // built layout (dist/src/cli) or source layout (src/cli)
    }
  }
  return "0.0.0";
}

export const VERSION = findVersion();
