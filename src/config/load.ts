/**
 * Loads a gateway config file. Contract:
 * - Returns the parsed config, or throws a ConfigError holding EVERY problem found, each with
 *   file, 1-based line and column of the YAML node at fault, config path and message, sorted
 *   by position. An unreadable file is a GatewayError CONFIG_READ instead.
 * - Order: YAML syntax (and duplicate keys; if any, nothing more is checked, the tree is not
 *   trustworthy), then `${env:}`/`${file:}` references, then the zod schema, then the
 *   semantic checks on every device that passed the schema, even when other parts failed.
 * - Fields that must be references (secrets) are checked by the schema in their raw text and
 *   get their resolved value afterwards. No message ever holds a resolved reference value.
 * - Pure of `process`: the caller passes the environment.
 */

import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { distance as editDistance } from "fastest-levenshtein";
import { type Document, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { errorMessage, GatewayError } from "../lib/errors.ts";
import { checkDevices } from "./check-devices.ts";
import { ConfigError, type ConfigIssue, formatPath, type PathSegment } from "./errors.ts";
import { configJsonSchema, isReferenceOnlyField, schemasAt } from "./json-schema.ts";
import { passedDevices } from "./passed-devices.ts";
import { anchorPaths } from "./paths.ts";
import { locate, pathAt } from "./positions.ts";
import { type Env, redact, resolveReferences } from "./refs.ts";
import { configSchema, type GatewayConfig } from "./schema/root.ts";

export interface LoadedConfig {
  config: GatewayConfig;
  /** The path the config was read from, as given. */
  file: string;
}

interface Problem {
  path: PathSegment[];
  message: string;
  /** "key" points at the map key of the last path segment (unknown keys). */
  mode?: "key" | "value";
}

export async function loadConfig(path: string, env: Env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new GatewayError("CONFIG_READ", `cannot read config file ${path}`, { cause: err });
  }
  return parseConfig(text, { file: path, env, baseDir: dirname(resolve(path)) });
}

/** Parses config text; `file` names it in issues, `baseDir` anchors relative `${file:}` paths. */
export function parseConfig(
  text: string,
  opts: { file: string; env: Env; baseDir: string },
): LoadedConfig {
  const { file } = opts;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    merge: true, // `<<: *defaults` merge keys, handy for tag templates
  });
  const at = (offset: number) => lineCounter.linePos(offset);
  if (doc.errors.length > 0) {
    // a tab throws everything after it off: when there is one, it is the one to fix first
    const tabs = doc.errors.filter((e) => e.code === "TAB_AS_INDENT");
    throw new ConfigError(
      file,
      (tabs.length > 0 ? tabs : doc.errors).map((error) => ({
        file,
        ...at(error.pos[0]),
        // in a file that does not parse, only a duplicate key has a trustworthy path
        path: error.code === "DUPLICATE_KEY" ? formatPath(pathAt(doc, error.pos[0])) : "",
        message: yamlMessage(error.code, error.message),
      })),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ConfigError(file, [{ file, line: 1, col: 1, path: "", message: errorMessage(err) }]);
  }

  const refs = resolveReferences(raw, {
    env: opts.env,
    baseDir: opts.baseDir,
    keepRaw: isReferenceOnlyField,
  });
  const problems: Problem[] = [...refs.issues];
  const refPaths = new Set(refs.issues.map((issue) => formatPath(issue.path)));

  const parsed = configSchema.safeParse(refs.tree);
  if (!parsed.success) {
    for (const problem of zodProblems(parsed.error.issues, refs.tree)) {
      if (!refPaths.has(formatPath(problem.path))) problems.push(problem);
    }
  }
  problems.push(...checkDevices(passedDevices(refs.tree)));

  if (problems.length > 0 || !parsed.success) {
    throw new ConfigError(
      file,
      problems.map((p) => toIssue(p, { file, doc, lineCounter, secrets: refs.secrets })),
    );
  }
  const config = parsed.data;
  for (const { path, value } of refs.deferred) setAt(config, path, value);
  return { config: anchorPaths(config, opts.baseDir), file };
}

function toIssue(
  problem: Problem,
  ctx: {
    file: string;
    doc: Document;
    lineCounter: LineCounter;
    secrets: Parameters<typeof redact>[1];
  },
): ConfigIssue {
  return {
    file: ctx.file,
    ...locate(ctx.doc, ctx.lineCounter, problem.path, problem.mode),
    path: formatPath(problem.path),
    message: redact(problem.message, ctx.secrets),
  };
}

/** YAML parser errors in the words of someone who edits tag maps, with the parser's own kept. */
const YAML_HINTS: Record<string, string> = {
  DUPLICATE_KEY: "duplicate key: a key may appear only once in a map",
  TAB_AS_INDENT: "a tab in the indentation: indent YAML with spaces only",
  BAD_INDENT: "this line is indented differently from the lines of its block",
  MULTILINE_IMPLICIT_KEY:
    "a key that runs over several lines: is the space after a ':' missing (host: 10.0.0.5), or a line mis-indented?",
  BLOCK_AS_IMPLICIT_KEY:
    "a key that runs over several lines: is the space after a ':' missing (host: 10.0.0.5), or a line mis-indented?",
  MISSING_CHAR: "a closing bracket or quote is missing",
};

function yamlMessage(code: string, message: string): string {
  if (code === "DUPLICATE_KEY") return YAML_HINTS[code]!;
  const hint = YAML_HINTS[code];
  const parser = message.split("\n")[0];
  return hint === undefined ? `YAML: ${parser}` : `${hint} (YAML: ${parser})`;
}

function zodProblems(issues: readonly z.core.$ZodIssue[], tree: unknown): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((s): s is PathSegment => typeof s !== "symbol");
    const value = getAt(tree, path);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        problems.push({
          path: keyPath,
          mode: "key",
          message: `unknown key "${key}"${suggest(path, key)}`,
        });
      }
    } else if (issue.code === "invalid_union" && "discriminator" in issue && issue.discriminator) {
      const options = (issue as { options?: unknown[] }).options ?? [];
      const expected = `expected one of ${options.join(", ")}`;
      problems.push({
        path,
        message:
          value === undefined
            ? `missing: ${expected}`
            : `unknown ${issue.discriminator} ${JSON.stringify(value)}: ${expected}`,
      });
    } else if (issue.code === "invalid_union") {
      problems.push({ path, message: unionMessage(issue.errors) });
    } else if (issue.code === "invalid_type" && value === undefined) {
      problems.push({
        path,
        message:
          path.length === 0
            ? "the file is empty: a config needs at least version and gateway"
            : `missing: expected ${issue.expected}`,
      });
    } else if (
      issue.code === "invalid_type" &&
      issue.expected === "string" &&
      typeof value === "number" &&
      quotingHelps(tree, path)
    ) {
      problems.push({ path, message: `expected a string: write it in quotes, "${value}"` });
    } else if (path.length === 0 && value === null) {
      problems.push({
        path,
        message: "the file is empty: a config needs at least version and gateway",
      });
    } else {
      problems.push({ path, message: issue.message });
    }
  }
  return problems;
}

/** Whether the number at `path` would pass as a string (YAML read `40101` as a number). */
function quotingHelps(tree: unknown, path: readonly PathSegment[]): boolean {
  const copy = structuredClone(tree);
  setAt(copy, path, String(getAt(tree, path)));
  const result = configSchema.safeParse(copy);
  const where = formatPath(path);
  return (
    result.success ||
    !result.error.issues.some(
      (issue) =>
        formatPath(issue.path.filter((s): s is PathSegment => typeof s !== "symbol")) === where,
    )
  );
}

/** The branch messages that say more than "wrong type"; else the types expected. */
function unionMessage(branches: readonly (readonly z.core.$ZodIssue[])[]): string {
  const all = branches.flat();
  const specific = all.filter((issue) => issue.code !== "invalid_type");
  if (specific.length > 0) return [...new Set(specific.map((issue) => issue.message))].join("; ");
  const expected = all.map((issue) => (issue.code === "invalid_type" ? issue.expected : "?"));
  return `expected ${[...new Set(expected)].join(" or ")}`;
}

function suggest(parent: readonly PathSegment[], key: string): string {
  const known = new Set<string>();
  for (const schema of schemasAt(configJsonSchema(), parent)) {
    for (const name of Object.keys(schema.properties ?? {})) known.add(name);
  }
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of known) {
    const distance = editDistance(key, name);
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best === undefined ? "" : ` (did you mean "${best}"?)`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function getAt(tree: unknown, path: readonly PathSegment[]): unknown {
  let node = tree;
  for (const segment of path) {
    if (Array.isArray(node) && typeof segment === "number") node = node[segment];
    else if (isRecord(node)) node = node[String(segment)];
    else return undefined;
  }
  return node;
}

function setAt(tree: unknown, path: readonly PathSegment[], value: unknown): void {
  const parent = getAt(tree, path.slice(0, -1));
  const last = path.at(-1);
  if (isRecord(parent) && last !== undefined) parent[String(last)] = value;
}
