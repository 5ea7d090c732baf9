/**
 * The dependency direction of STYLE.md, as data, and the checks that hold the tree to it:
 *
 *   main -> cli -> app -> {drivers, engine, journal, publish} -> config -> events, lib
 *
 * events/ and lib/ import nothing of ours. A driver never imports another driver. Protocol
 * libraries are imported only in their own folder. Only cli/ and app/ (and main.ts) touch
 * `process`. No import cycles. simulators/ are libraries the CLI and tests use; they may use
 * the config notation and codecs but nothing that runs the gateway.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

export type Layer =
  | "main"
  | "cli"
  | "app"
  | "drivers"
  | "engine"
  | "journal"
  | "publish"
  | "config"
  | "events"
  | "lib"
  | "simulators";

export const ALLOWED: Record<Layer, readonly Layer[]> = {
  main: ["cli"],
  cli: ["app", "config", "drivers", "engine", "journal", "publish", "events", "lib", "simulators"],
  app: ["drivers", "engine", "journal", "publish", "config", "events", "lib", "simulators"],
  drivers: ["config", "events", "lib"],
  engine: ["config", "events", "lib"],
  journal: ["config", "events", "lib"],
  publish: ["config", "events", "lib"],
  config: ["events", "lib"],
  events: [],
  lib: [],
  simulators: ["config", "drivers", "events", "lib"],
};

/** Third-party packages that may be imported only under these folders (repo-relative). */
export const PROTOCOL_PACKAGES: Record<string, readonly string[]> = {
  "modbus-serial": ["src/drivers/modbus/"],
  serialport: ["src/drivers/modbus/", "simulators/modbus/"],
  "node-opcua": ["src/drivers/opcua/", "simulators/opcua/"],
  mqtt: ["src/publish/"],
  aedes: ["src/app/"],
};

export const PROCESS_ALLOWED = ["src/main.ts", "src/cli/", "src/app/"];

export interface SourceFile {
  path: string; // repo-relative, forward slashes
  imports: string[]; // raw specifiers
  usesProcess: boolean;
}

const IMPORT_RE =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|(?:^|\n)\s*import\s+["']([^"']+)["']/g;

export function parseSource(path: string, text: string): SourceFile {
  const imports: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) imports.push((m[1] ?? m[2] ?? m[3])!);
  const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
  return { path, imports, usesProcess: /\bprocess\s*[.[]/.test(code) };
}

export function layerOf(path: string): Layer | undefined {
  if (path === "src/main.ts") return "main";
  if (path.startsWith("simulators/")) return "simulators";
  const m = /^src\/([^/]+)\//.exec(path);
  return m ? (m[1] as Layer) : undefined;
}

/** The driver folder of a file under src/drivers/<name>/, if any. */
function driverOf(path: string): string | undefined {
  return /^src\/drivers\/([^/]+)\//.exec(path)?.[1];
}

export function collect(root: string, dirs: readonly string[]): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) {
        files.push(parseSource(rel, readFileSync(join(root, rel), "utf8")));
      }
    }
  };
  for (const dir of dirs) walk(dir);
  return files;
}

function resolveRelative(from: string, spec: string): string {
  return relative("/", resolve("/", dirname(from), spec)).replaceAll("\\", "/");
}

export function violations(files: readonly SourceFile[]): string[] {
  const problems: string[] = [];
  for (const file of files) {
    const layer = layerOf(file.path);
    if (!layer) continue;
    for (const spec of file.imports) {
      if (spec.startsWith(".")) {
        const target = resolveRelative(file.path, spec);
        const targetLayer = layerOf(target);
        if (!targetLayer) {
          problems.push(`${file.path} imports ${spec}, outside src/ and simulators/`);
          continue;
        }
        if (targetLayer !== layer && !ALLOWED[layer].includes(targetLayer)) {
          problems.push(`${file.path} (${layer}) must not import ${target} (${targetLayer})`);
        }
        const from = driverOf(file.path);
        const to = driverOf(target);
        if (from && to && from !== to) {
          problems.push(`${file.path}: a driver must not import another driver (${target})`);
        }
        if (target === "src/drivers/registry.ts" && layer !== "app" && layer !== "cli") {
          problems.push(`${file.path}: only app/ and cli/ use the driver registry`);
        }
      } else {
        const pkg = spec.startsWith("@")
          ? spec.split("/").slice(0, 2).join("/")
          : spec.split("/")[0]!;
        const homes = PROTOCOL_PACKAGES[pkg];
        if (homes && !homes.some((home) => file.path.startsWith(home))) {
          problems.push(`${file.path} imports ${pkg}, which belongs in ${homes.join(" or ")}`);
        }
      }
    }
    if (file.usesProcess && !PROCESS_ALLOWED.some((p) => file.path.startsWith(p))) {
      problems.push(`${file.path} touches process: only cli/ and app/ may`);
    }
  }
  return problems;
}

/** Every import cycle between files, as a list of paths. */
export function cycles(files: readonly SourceFile[]): string[][] {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    graph.set(
      file.path,
      file.imports.filter((s) => s.startsWith(".")).map((s) => resolveRelative(file.path, s)),
    );
  }
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === "open") found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}
