/**
 * The JSON Schema of the config file as users write it (zod's input side: durations are
 * patterned strings, defaults optional), generated from `configSchema`, the only source.
 * `config/plc2mqtt.schema.json` is this output; a test fails when the committed file differs.
 * Also answers schema questions about config paths (which fields must be references).
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
    ...(z.toJSONSchema(configSchema, { io: "input", target: "draft-07" }) as JsonSchema),
    title: "plc2mqtt gateway configuration",
  };
  return cached;
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
