/**
 * Point 7 (issue 13): the config's JSON Schema (what an editor checks, generated from the zod
 * schema) and `plc2mqtt validate` agree on every shipped example and config fixture:
 *
 * - whatever the JSON Schema refuses, validate refuses too, at the same place (the path, or one
 *   above or below it: a union reports where its branches part);
 * - whatever zod's own checks refuse (a type, a range, a pattern, an enum, an unknown or a
 *   missing key), the JSON Schema refuses too. What it cannot say (references, checks across
 *   fields, ranges of durations and sizes written as text) is validate's alone.
 *
 * The documents are checked as they are written (references unresolved), as an editor sees them.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv, type ErrorObject } from "ajv";
import formatsModule from "ajv-formats";
import { afterAll, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { ConfigError, formatPath, type PathSegment } from "../../src/config/errors.ts";
import { configJsonSchema } from "../../src/config/json-schema.ts";
import { parseConfig } from "../../src/config/load.ts";
import { configSchema } from "../../src/config/schema/root.ts";
import { FIXTURE_DIR, FIXTURE_ENV, withReferencesSatisfied } from "./fixture-env.ts";

const addFormats = formatsModule.default;
const CONFIG_DIR = new URL("../../config/", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "plc2mqtt-agree-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const schemaCheck = ajv.compile(configJsonSchema());

interface Case {
  name: string;
  file: string;
  baseDir: string;
  env: Record<string, string>;
}

/** The examples' ${env:} names set, their ${file:} files made (the fixtures bring their own). */
function exampleCase(name: string): Case {
  const { text: satisfied, env } = withReferencesSatisfied(
    readFileSync(join(CONFIG_DIR, name), "utf8"),
    tmp,
  );
  const file = join(tmp, name);
  writeFileSync(file, satisfied);
  return { name: `config/${name}`, file, baseDir: CONFIG_DIR, env };
}

function yamlFiles(dir: string, prefix = ""): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) return yamlFiles(dir, rel);
    return entry.name.endsWith(".yaml") ? [rel] : [];
  });
}

const cases: Case[] = [
  ...readdirSync(CONFIG_DIR)
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map(exampleCase),
  ...yamlFiles(FIXTURE_DIR)
    .sort()
    .map((rel) => ({
      name: `test/fixtures/config/${rel}`,
      file: join(FIXTURE_DIR, rel),
      baseDir: FIXTURE_DIR,
      env: FIXTURE_ENV,
    })),
];

/** `/devices/0/tags/3` -> `devices[0].tags[3]` */
function pointerPath(pointer: string): string {
  const segments: PathSegment[] = pointer
    .split("/")
    .slice(1)
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  return formatPath(segments);
}

const child = (path: string, key: string) => (path === "" ? key : `${path}.${key}`);

/** Where the JSON Schema refuses the document (a union's branches count once, where it is). */
function schemaPaths(errors: readonly ErrorObject[]): Map<string, string> {
  const paths = new Map<string, string>();
  for (const error of errors) {
    if (/\/(anyOf|oneOf)\/\d+\//.test(error.schemaPath)) continue; // inside a branch
    let path = pointerPath(error.instancePath);
    const params = error.params as { additionalProperty?: string; missingProperty?: string };
    if (params.additionalProperty !== undefined) path = child(path, params.additionalProperty);
    if (params.missingProperty !== undefined) path = child(path, params.missingProperty);
    paths.set(path, `${error.keyword}: ${error.message ?? ""}`);
  }
  return paths;
}

/** The same place, or one holding the other. */
function related(a: string, b: string): boolean {
  const within = (inner: string, outer: string) =>
    outer === "" ||
    inner === outer ||
    inner.startsWith(`${outer}.`) ||
    inner.startsWith(`${outer}[`);
  return within(a, b) || within(b, a);
}

interface Verdicts {
  /** null: not YAML at all (only validate can judge it). */
  schema: Map<string, string> | null;
  zod: Map<string, string>;
  validate: string[];
}

function judge(c: Case): Verdicts {
  const text = readFileSync(c.file, "utf8");
  let validate: string[] = [];
  try {
    parseConfig(text, { file: c.file, env: c.env, baseDir: c.baseDir });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    validate = err.issues.map((issue) => issue.path);
  }
  const doc = parseDocument(text, { uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) return { schema: null, zod: new Map(), validate };
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  const schema = schemaCheck(data)
    ? new Map<string, string>()
    : schemaPaths(schemaCheck.errors ?? []);
  const zod = new Map<string, string>();
  const parsed = configSchema.safeParse(data);
  for (const issue of parsed.success ? [] : parsed.error.issues) {
    if (issue.code === "custom") continue; // a refinement or a transform: beyond JSON Schema
    const path = formatPath(issue.path.filter((s): s is PathSegment => typeof s !== "symbol"));
    const keys = issue.code === "unrecognized_keys" ? issue.keys : [undefined];
    for (const key of keys) zod.set(key === undefined ? path : child(path, key), issue.message);
  }
  return { schema, zod, validate };
}

describe("point 7: the JSON Schema and validate agree on every example and fixture", () => {
  it("has the examples and the fixtures", () => {
    expect(cases.map((c) => c.name)).toContain("config/example.yaml");
    expect(cases.filter((c) => c.name.startsWith("test/")).length).toBeGreaterThan(20);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const { schema, zod, validate } = judge(c);
    if (schema === null) {
      expect(validate.length, "a file that is not YAML must be refused").toBeGreaterThan(0);
      return;
    }
    const schemaOnly = [...schema]
      .filter(([path]) => !validate.some((v) => related(path, v)))
      .map(
        ([path, why]) => `the schema refuses ${path || "the document"} (${why}), validate does not`,
      );
    const zodOnly = [...zod]
      .filter(([path]) => ![...schema.keys()].some((s) => related(path, s)))
      .map(([path, why]) => `validate refuses ${path} (${why}), the schema does not`);
    expect([...schemaOnly, ...zodOnly]).toEqual([]);
  });

  it("refuses max_bytes: -5 in both, and takes 1GiB, 1gib and 512MiB in both", () => {
    const write = (name: string, size: string) => {
      const file = join(tmp, name);
      writeFileSync(file, `version: 1\ngateway:\n  id: edge\njournal:\n  max_bytes: ${size}\n`);
      return judge({ name, file, baseDir: tmp, env: {} });
    };
    const negative = write("negative.yaml", "-5");
    expect([...(negative.schema?.keys() ?? [])]).toEqual(["journal.max_bytes"]);
    expect(negative.validate).toEqual(["journal.max_bytes"]);
    for (const size of ["1GiB", "1gib", "512MiB", "2GB", "1048576"]) {
      const ok = write(`ok-${size}.yaml`, size);
      expect({ size, schema: [...(ok.schema?.keys() ?? [])], validate: ok.validate }).toEqual({
        size,
        schema: [],
        validate: [],
      });
    }
  });
});
