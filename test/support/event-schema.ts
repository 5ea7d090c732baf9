/**
 * Validates event documents against the published JSON Schema
 * (src/events/plc2mqtt-events.schema.json). Every test that sees events on the wire runs them
 * through here, so the schema and the code cannot drift apart unnoticed.
 *
 * The schema is compiled once per test process (ajv draft 2020-12, formats from ajv-formats,
 * strict mode: a schema mistake fails loudly). A violation throws an Error naming the event
 * (type, id) and listing every violation with its JSON pointer.
 */
import { readFileSync } from "node:fs";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import formatsModule from "ajv-formats";

export const EVENT_SCHEMA_PATH = new URL(
  "../../src/events/plc2mqtt-events.schema.json",
  import.meta.url,
);

// ajv-formats is CommonJS: under nodenext the default import is `module.exports`, whose
// `default` is the plugin.
const addFormats = formatsModule.default;

interface Validators {
  event: ValidateFunction;
  batch: ValidateFunction;
}

let compiled: Validators | undefined;

function validators(): Validators {
  if (compiled !== undefined) return compiled;
  const schema = JSON.parse(readFileSync(EVENT_SCHEMA_PATH, "utf8")) as { $id: string };
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats(ajv);
  ajv.addSchema(schema);
  const event = ajv.getSchema(schema.$id);
  const batch = ajv.getSchema(`${schema.$id}#/$defs/batch`);
  if (event === undefined || batch === undefined) {
    throw new Error(`${EVENT_SCHEMA_PATH.pathname}: schema or its $defs/batch did not compile`);
  }
  compiled = { event, batch };
  return compiled;
}

/** Validates one event document (object or JSON text); throws an Error listing every violation. */
export function assertValidEvent(doc: unknown): void {
  check(validators().event, parse(doc), "event");
}

/** Validates each of `docs` as one event; throws listing every violation of every event. */
export function assertValidEvents(docs: readonly unknown[]): void {
  const failures: string[] = [];
  docs.forEach((doc, i) => {
    try {
      assertValidEvent(doc);
    } catch (err) {
      failures.push(`[${i}] ${(err as Error).message}`);
    }
  });
  if (failures.length > 0) {
    throw new Error(`${failures.length} of ${docs.length} events invalid:\n${failures.join("\n")}`);
  }
}

/** Validates a batch document (a JSON array of events, object or JSON text). */
export function assertValidBatch(doc: unknown): void {
  check(validators().batch, parse(doc), "batch");
}

function parse(doc: unknown): unknown {
  if (typeof doc !== "string") return doc;
  try {
    return JSON.parse(doc);
  } catch (err) {
    throw new Error(`event is not JSON (${(err as Error).message}): ${doc.slice(0, 200)}`);
  }
}

function check(validate: ValidateFunction, doc: unknown, what: string): void {
  if (validate(doc)) return;
  const errors = (validate.errors ?? []).filter(
    // "must match then schema" only repeats the errors inside the then branch.
    (e) => e.keyword !== "if",
  );
  throw new Error(
    `${what} ${describe(doc)} violates ${EVENT_SCHEMA_PATH.pathname.split("/").pop()}:\n${errors
      .map(formatError)
      .join("\n")}`,
  );
}

function describe(doc: unknown): string {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return Array.isArray(doc) ? `(array of ${doc.length})` : `(${typeof doc})`;
  }
  const { type, id } = doc as { type?: unknown; id?: unknown };
  return `type=${JSON.stringify(type)} id=${JSON.stringify(id)}`;
}

function formatError(e: ErrorObject): string {
  const where = e.instancePath === "" ? "/" : e.instancePath;
  const params = e.params as Record<string, unknown>;
  let detail = "";
  if (e.keyword === "additionalProperties") detail = ` (${String(params.additionalProperty)})`;
  else if (e.keyword === "enum") detail = ` (${JSON.stringify(params.allowedValues)})`;
  else if (e.keyword === "const") detail = ` (${JSON.stringify(params.allowedValue)})`;
  return `  ${where} ${e.message ?? e.keyword}${detail}`;
}
