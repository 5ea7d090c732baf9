/**
 * Helpers for the systemd tests: run a program to completion, find a tool on PATH (a missing
 * systemd-analyze fails the test with the apt hint, everywhere: nothing is skipped), read a
 * unit file's directives, and parse `systemd-analyze security`'s overall exposure line.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SYSTEMD_DIR = join(ROOT, "systemd");
export const UNIT_FILE = join(SYSTEMD_DIR, "plc2mqtt.service");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(
  file: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd ?? ROOT,
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The tool's path on PATH (default: this process's), or undefined. */
export function which(name: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export const SYSTEMD_ANALYZE_HINT =
  "systemd-analyze is missing: install the Debian package systemd (apt-get install -y systemd); .ci/run must list it";

/** systemd-analyze on PATH, or an error with the install hint (the test fails, never skips). */
export function systemdAnalyze(path?: string): string {
  const found = which("systemd-analyze", path);
  if (found === undefined) throw new Error(SYSTEMD_ANALYZE_HINT);
  return found;
}

/** Directives of a unit file: section -> key -> every value in order (repeats kept). */
export type UnitDirectives = Map<string, Map<string, string[]>>;

export function parseUnit(text: string): UnitDirectives {
  const sections: UnitDirectives = new Map();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1] !== undefined) {
      current = sections.get(header[1]) ?? new Map();
      sections.set(header[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (current === undefined || eq < 1) throw new Error(`not a unit file line: ${raw}`);
    const key = line.slice(0, eq).trim();
    const values = current.get(key) ?? [];
    values.push(line.slice(eq + 1).trim());
    current.set(key, values);
  }
  return sections;
}

export function readUnit(file: string): UnitDirectives {
  return parseUnit(readFileSync(file, "utf8"));
}

/** The last value of a directive (what systemd uses for single-valued settings). */
export function directive(unit: UnitDirectives, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

/** "→ Overall exposure level for plc2mqtt.service: 1.3 OK 🙂" -> 1.3 */
export function overallExposure(output: string, unitName = "plc2mqtt.service"): number {
  const escaped = unitName.replace(/[.]/g, "\\.");
  const match = new RegExp(`Overall exposure level for ${escaped}: (\\d+(?:\\.\\d+)?) `).exec(
    output,
  );
  if (match?.[1] === undefined) {
    throw new Error(`no overall exposure line for ${unitName} in:\n${output.slice(-2000)}`);
  }
  return Number(match[1]);
}
