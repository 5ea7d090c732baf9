/**
 * `${env:NAME}` and `${file:/path}` references in config string values, whole or embedded
 * (`mqtt://${env:HOST}:1883`). Contract:
 * - Every string value is scanned; map keys are not. A `${kind:...}` with another kind is an
 *   issue (a typo must not pass as literal text); `${...}` without a colon is left alone.
 * - A missing variable or unreadable file is an issue at that value naming the reference,
 *   never its value; the value is then left unresolved (raw text).
 * - File contents lose one trailing newline; relative file paths start at `baseDir` (the
 *   config file's directory).
 * - Fields that must BE references (`keepRaw`) keep their raw text in the returned tree so
 *   the schema can check it is a reference; their resolved values come back in `deferred`
 *   for the caller to put into the parsed config.
 * - `secrets` lists every resolved value with its reference, for redacting messages.
 * Reads files; touches no `process` state (the caller passes the environment).
 */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { PathSegment } from "./errors.ts";

export type Env = Readonly<Record<string, string | undefined>>;

export interface RefContext {
  env: Env;
  baseDir: string;
  /** Fields whose raw text the schema must see (secrets that must be references). */
  keepRaw?: (path: readonly PathSegment[]) => boolean;
}

export interface RefIssue {
  path: PathSegment[];
  message: string;
}

export interface ResolvedTree {
  tree: unknown;
  issues: RefIssue[];
  deferred: Array<{ path: PathSegment[]; value: string }>;
  secrets: Array<{ value: string; ref: string }>;
}

const REFERENCE = /\$\{([A-Za-z]+):([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface Walk extends ResolvedTree {
  ctx: RefContext;
}

export function resolveReferences(tree: unknown, ctx: RefContext): ResolvedTree {
  const walk: Walk = { ctx, tree: undefined, issues: [], deferred: [], secrets: [] };
  walk.tree = visit(tree, [], walk);
  return { tree: walk.tree, issues: walk.issues, deferred: walk.deferred, secrets: walk.secrets };
}

function visit(value: unknown, path: PathSegment[], walk: Walk): unknown {
  if (typeof value === "string") return resolveString(value, path, walk);
  if (Array.isArray(value)) return value.map((item, index) => visit(item, [...path, index], walk));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = visit(item, [...path, key], walk);
    return out;
  }
  return value;
}

function resolveString(text: string, path: PathSegment[], walk: Walk): string {
  if (!text.includes("${")) return text;
  let failed = false;
  const resolved = text.replace(REFERENCE, (ref: string, kind: string, arg: string) => {
    const result = resolveOne(ref, kind, arg, walk.ctx);
    if ("error" in result) {
      failed = true;
      walk.issues.push({ path, message: result.error });
      return ref;
    }
    walk.secrets.push({ value: result.value, ref });
    return result.value;
  });
  if (failed || resolved === text) return text;
  if (walk.ctx.keepRaw?.(path)) {
    walk.deferred.push({ path, value: resolved });
    return text;
  }
  return resolved;
}

function resolveOne(
  ref: string,
  kind: string,
  arg: string,
  ctx: RefContext,
): { value: string } | { error: string } {
  if (kind === "env") {
    if (!ENV_NAME.test(arg)) return { error: `${ref}: not a variable name` };
    const value = ctx.env[arg];
    return value === undefined ? { error: `${ref} is not set` } : { value };
  }
  if (kind === "file") {
    if (arg === "") return { error: `${ref}: no file path` };
    const file = isAbsolute(arg) ? arg : resolve(ctx.baseDir, arg);
    try {
      return { value: readFileSync(file, "utf8").replace(/\r?\n$/, "") };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "unknown error";
      return { error: `${ref} cannot be read (${code})` };
    }
  }
  return { error: `${ref}: unknown reference kind "${kind}"; use \${env:NAME} or \${file:/path}` };
}

/** Replaces every resolved value in `message` by the reference it came from. */
export function redact(message: string, secrets: ResolvedTree["secrets"]): string {
  let out = message;
  // Longest first, so a value containing another one is replaced whole.
  const sorted = [...secrets].sort((a, b) => b.value.length - a.value.length);
  for (const { value, ref } of sorted) {
    if (value.length >= 3) out = out.split(value).join(ref);
  }
  return out;
}
