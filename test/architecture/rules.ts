/**
 * The dependency direction of STYLE.md, as data, and the checks that hold the tree to it:
 *
 *   main -> cli -> app -> {drivers, engine, journal, publish} -> config -> events, lib
 *
 * - events/ and lib/ import nothing of ours. A driver never imports another driver. Protocol
 *   libraries are imported only in their own folder. simulators/ are libraries the CLI and
 *   tests use; they may use the config notation and codecs but nothing that runs the gateway.
 * - Only cli/ and app/ (and main.ts) reach `process`, in any form: `process.env`,
 *   `const { env } = process`, `import { env } from "node:process"`, `globalThis.process`...
 * - Every file has a layer: under src/ only main.ts sits directly; a folder of src/ that is not
 *   a layer below is named as such (add it here, with its place in the direction).
 * - A folder whose index.ts says it is the folder's "public face" is imported from other
 *   folders through that index.ts only (publish/, journal/, engine/).
 * - No import cycles.
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
  "node-opcua-client": ["src/drivers/opcua/"],
  "node-opcua-certificate-manager": ["src/drivers/opcua/"],
  mqtt: ["src/publish/"],
  aedes: ["src/app/"],
};

export const PROCESS_ALLOWED = ["src/main.ts", "src/cli/", "src/app/"];

export interface SourceFile {
  path: string; // repo-relative, forward slashes
  imports: string[]; // raw specifiers (static, dynamic, re-exports, require)
  usesProcess: boolean;
  /** An index.ts whose leading comment says it is its folder's public face. */
  publicFace: boolean;
}

const IMPORT_RE =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)|(?:^|\n)\s*import\s+["']([^"']+)["']|\brequire\(\s*["']([^"']+)["']\s*\)/g;

export function parseSource(path: string, text: string): SourceFile {
  const imports: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) imports.push((m[1] ?? m[2] ?? m[3] ?? m[4])!);
  const leading = /^\s*\/\*[\s\S]*?\*\//.exec(text)?.[0] ?? "";
  return {
    path,
    imports,
    usesProcess: reachesProcess(text, imports),
    publicFace: path.endsWith("/index.ts") && /public face/i.test(leading),
  };
}

/** Whether the code reaches the `process` object, whatever the spelling. */
function reachesProcess(text: string, imports: readonly string[]): boolean {
  if (imports.some((spec) => spec === "process" || spec === "node:process")) return true;
  const { code, withStrings } = stripSource(text);
  // globalThis.process, global?.process
  if (/\b(?:globalThis|global)\s*(?:\?\.|\.)\s*process\b/.test(code)) return true;
  // the name as a string: globalThis["process"], createRequire(...)("process"), Reflect.get
  if (/(["'`])(?:node:)?process\1/.test(withStrings)) return true;
  // the bare identifier: process.env, process[k], const { env } = process, f(process)...
  // but not a member named process (child.process) or an object key ({ process: 1 })
  for (const m of code.matchAll(/(?<![\w$])process(?![\w$])/g)) {
    const before = code.slice(0, m.index).trimEnd();
    const after = code.slice(m.index + "process".length).trimStart();
    if (before.endsWith(".") && !before.endsWith("...")) continue;
    if (after.startsWith(":") && /[{,]$/.test(before)) continue;
    return true;
  }
  return false;
}

/**
 * The source without comments: `code` also without the text of string and template literals
 * and regex literals (template expressions are kept), `withStrings` with them. A regex literal
 * is recognised where an expression may start, so a quote inside one opens no string.
 */
function stripSource(text: string): { code: string; withStrings: string } {
  let code = "";
  let withStrings = "";
  const braces: number[] = []; // open-brace depth at each template ${ ... } being read
  let depth = 0;
  let i = 0;
  const emit = (s: string, isCode: boolean) => {
    withStrings += s;
    code += isCode ? s : " ";
  };
  const prevSignificant = () => withStrings.trimEnd().slice(-1);
  const readTemplate = () => {
    // at the character after ` or after the } closing an expression
    while (i < text.length) {
      const c = text[i]!;
      if (c === "\\") {
        emit(text.slice(i, i + 2), false);
        i += 2;
      } else if (c === "`") {
        emit(c, true);
        i++;
        return;
      } else if (c === "$" && text[i + 1] === "{") {
        emit("${", true);
        i += 2;
        braces.push(depth);
        depth++;
        return;
      } else {
        emit(c, false);
        i++;
      }
    }
  };
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === "/" && next === "/") {
      const end = text.indexOf("\n", i);
      i = end === -1 ? text.length : end;
    } else if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end === -1 ? text.length : end + 2;
      emit(" ", true);
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      emit(c, true);
      emit(text.slice(i + 1, j), false);
      emit(c, true);
      i = j + 1;
    } else if (c === "`") {
      emit(c, true);
      i++;
      readTemplate();
    } else if (
      c === "/" &&
      (prevSignificant() === "" || /[(,=:[!&|?{};+\-*%<>~^]/.test(prevSignificant()))
    ) {
      // a regex literal
      let j = i + 1;
      let inClass = false;
      while (j < text.length && text[j] !== "\n") {
        const r = text[j]!;
        if (r === "\\") j++;
        else if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        else if (r === "/" && !inClass) break;
        j++;
      }
      emit("/", true);
      emit(text.slice(i + 1, j), false);
      emit("/", true);
      i = j + 1;
    } else if (c === "{") {
      depth++;
      emit(c, true);
      i++;
    } else if (c === "}") {
      depth--;
      emit(c, true);
      i++;
      if (braces.length > 0 && braces.at(-1) === depth) {
        braces.pop();
        readTemplate();
      }
    } else {
      emit(c, true);
      i++;
    }
  }
  return { code, withStrings };
}

const LAYERS = new Set<string>(Object.keys(ALLOWED));

/** The layer of a file, or undefined for one outside every layer (see placementProblem). */
export function layerOf(path: string): Layer | undefined {
  if (path === "src/main.ts") return "main";
  if (path.startsWith("simulators/")) return "simulators";
  const folder = /^src\/([^/]+)\//.exec(path)?.[1];
  return folder !== undefined && LAYERS.has(folder) ? (folder as Layer) : undefined;
}

/** Why a file under src/ has no layer, if it has none. */
function placementProblem(path: string): string | undefined {
  if (layerOf(path) !== undefined || !path.startsWith("src/")) return undefined;
  const folder = /^src\/([^/]+)\//.exec(path)?.[1];
  if (folder === undefined) {
    return `${path} sits directly under src/, where only main.ts belongs: move it into the layer it serves`;
  }
  return `${path} is in src/${folder}/, a folder that is no layer of STYLE.md: name its place in the direction (test/architecture/rules.ts ALLOWED) or move the file`;
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

/** The folder of each public face ("src/publish/") and its index.ts. */
function publicFaces(files: readonly SourceFile[]): Map<string, string> {
  const faces = new Map<string, string>();
  for (const file of files) if (file.publicFace) faces.set(`${dirname(file.path)}/`, file.path);
  return faces;
}

export function violations(files: readonly SourceFile[]): string[] {
  const problems: string[] = [];
  const faces = publicFaces(files);
  for (const file of files) {
    const misplaced = placementProblem(file.path);
    if (misplaced !== undefined) problems.push(misplaced);
    const layer = layerOf(file.path);
    for (const spec of file.imports) {
      if (spec.startsWith(".")) {
        const target = resolveRelative(file.path, spec);
        const targetLayer = layerOf(target);
        if (!targetLayer) {
          if (!target.startsWith("src/") && !target.startsWith("simulators/")) {
            problems.push(`${file.path} imports ${spec}, outside src/ and simulators/`);
          }
          continue; // a misplaced target is reported as a file of its own
        }
        if (layer && targetLayer !== layer && !ALLOWED[layer].includes(targetLayer)) {
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
        for (const [folder, face] of faces) {
          if (target.startsWith(folder) && !file.path.startsWith(folder) && target !== face) {
            problems.push(
              `${file.path} imports ${target}: other folders use ${folder} through its public face ${face}`,
            );
          }
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
