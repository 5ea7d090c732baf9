/**
 * The JSON Schema of the config file as users write it (zod's input side: durations are
 * patterned strings, defaults optional), generated from `configSchema`, the only source.
 * `config/plc2mqtt.schema.json` is this output; a test fails when the committed file differs.
 * Also answers schema questions about config paths (which fields must be references).
 *
 * A JSON Schema pattern has no flags: a zod regex with the `i` flag (sizes: `1GiB`, `512mib`)
 * is written out with both cases spelled in (`[gG][iI][bB]`), so an editor accepts what
 * `validate` accepts (issue 13 point 7). A flag whose meaning cannot be spelled (`m`, `s`)
 * stops the generation with an error naming the pattern.
 */
import { z } from "zod";
import type { PathSegment } from "./errors.ts";
import { configSchema } from "./schema/root.ts";

export interface JsonSchema {
  [key: string]: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  pattern?: string;
}

export const SCHEMA_FILE_NAME = "plc2mqtt.schema.json";

let cached: JsonSchema | undefined;

/** draft-07: the dialect editors (yaml-language-server) support best. */
export function configJsonSchema(): JsonSchema {
  cached ??= {
    ...(z.toJSONSchema(configSchema, {
      io: "input",
      target: "draft-07",
      override: ({ zodSchema, jsonSchema }) => carryRegexFlags(zodSchema, jsonSchema as JsonSchema),
    }) as JsonSchema),
    title: "plc2mqtt gateway configuration",
  };
  return cached;
}

/** Rewrites the patterns of a string schema whose zod regexes have flags (see the header). */
function carryRegexFlags(zodSchema: z.core.$ZodType, jsonSchema: JsonSchema): void {
  const def = zodSchema._zod.def as { type: string; checks?: z.core.$ZodCheck[] };
  if (def.type !== "string") return;
  const spelled = new Map<string, string>();
  for (const check of def.checks ?? []) {
    const pattern = (check._zod.def as { pattern?: unknown }).pattern;
    if (!(pattern instanceof RegExp) || pattern.flags.replace(/[guy]/g, "") === "") continue;
    if (/[ms]/.test(pattern.flags)) {
      throw new Error(`the config pattern ${pattern} has flags a JSON Schema pattern cannot carry`);
    }
    spelled.set(pattern.source, caseless(pattern.source));
  }
  if (spelled.size === 0) return;
  const rewrite = (schema: JsonSchema) => {
    if (typeof schema.pattern === "string")
      schema.pattern = spelled.get(schema.pattern) ?? schema.pattern;
  };
  rewrite(jsonSchema);
  for (const part of jsonSchema.allOf ?? []) rewrite(part);
}

/** A regex source that matches as the source with the `i` flag does (ASCII letters). */
export function caseless(source: string): string {
  let out = "";
  let inClass = false;
  const other = (c: string) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase());
  const isLetter = (c: string | undefined) => c !== undefined && /[A-Za-z]/.test(c);
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === "\\") {
      // an escape is kept as written, with what it takes: \d, \x41, \u{1F600}, \p{L}, \k<n>
      const rest = source.slice(i);
      const escaped =
        /^\\(?:x[0-9A-Fa-f]{2}|u\{[0-9A-Fa-f]+\}|u[0-9A-Fa-f]{4}|[pP]\{[^}]*\}|k<[^>]*>|c[A-Za-z]|.)/s.exec(
          rest,
        )![0];
      out += escaped;
      i += escaped.length - 1;
    } else if (!inClass && source.startsWith("(?<", i) && !/^\(\?<[=!]/.test(source.slice(i))) {
      const name = /^\(\?<[^>]*>/.exec(source.slice(i))![0]; // a group name stays as written
      out += name;
      i += name.length - 1;
    } else if (c === "[" && !inClass) {
      inClass = true;
      out += c;
    } else if (c === "]" && inClass) {
      inClass = false;
      out += c;
    } else if (inClass && isLetter(c) && source[i + 1] === "-" && isLetter(source[i + 2])) {
      const to = source[i + 2]!;
      out += `${c}-${to}${other(c)}-${other(to)}`;
      i += 2;
    } else if (isLetter(c)) {
      out += inClass ? `${c}${other(c)}` : `[${c}${other(c)}]`;
    } else {
      out += c;
    }
  }
  return out;
}

/** The file content: stable, two-space indented, newline at the end. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

/** The schemas (every union branch) that may apply at `path`. */
export function schemasAt(root: JsonSchema, path: readonly PathSegment[]): JsonSchema[] {
  let current = expand(root);
  for (const segment of path) {
    const next: JsonSchema[] = [];
    for (const schema of current) {
      const sub = typeof segment === "number" ? schema.items : schema.properties?.[segment];
      if (sub !== undefined) next.push(...expand(sub));
    }
    current = next;
  }
  return current;
}

function expand(schema: JsonSchema): JsonSchema[] {
  const branches = [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])];
  return [schema, ...branches.flatMap(expand)];
}

/** A pattern that accepts `${env:A}` and `${file:/a}` but not plain text. */
function acceptsOnlyReferences(pattern: string): boolean {
  const re = new RegExp(pattern);
  return re.test("${env:A}") && re.test("${file:/a}") && !re.test("plain");
}

/** Whether the field at `path` must be written as a reference (a secret, like mqtt.password). */
export function isReferenceOnlyField(path: readonly PathSegment[]): boolean {
  return schemasAt(configJsonSchema(), path).some(
    (schema) => typeof schema.pattern === "string" && acceptsOnlyReferences(schema.pattern),
  );
}
