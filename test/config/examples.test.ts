/**
 * Every config/*.yaml validates (with the env variables and files its references need made
 * up here), starts with the yaml-language-server schema line, and config/example.yaml uses
 * every key the schema defines, every protocol, type and byte order: it cannot go stale.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { configJsonSchema, type JsonSchema } from "../../src/config/json-schema.ts";
import { parseConfig } from "../../src/config/load.ts";
import { withReferencesSatisfied } from "./fixture-env.ts";

const CONFIG_DIR = new URL("../../config/", import.meta.url).pathname;
const SCHEMA_LINE = "# yaml-language-server: $schema=./plc2mqtt.schema.json";
const tmp = mkdtempSync(join(tmpdir(), "plc2mqtt-examples-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const examples = readdirSync(CONFIG_DIR)
  .filter((name) => name.endsWith(".yaml"))
  .sort();

describe("config examples", () => {
  it("include example.yaml", () => {
    expect(examples).toContain("example.yaml");
  });

  it.each(examples)("%s starts with the editor's schema line", (name) => {
    const first = readFileSync(join(CONFIG_DIR, name), "utf8").split("\n")[0];
    expect(first).toBe(SCHEMA_LINE);
  });

  it.each(examples)("%s validates", (name) => {
    const file = join(CONFIG_DIR, name);
    const original = readFileSync(file, "utf8");
    const { text, env } = withReferencesSatisfied(original, tmp);
    expect(() => parseConfig(text, { file, env, baseDir: CONFIG_DIR })).not.toThrow();
  });
});

/** Key paths like `devices[].tags[].byte_order`, over every union branch. */
function schemaKeys(schema: JsonSchema, prefix: string, out: Set<string>): Set<string> {
  for (const branch of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) {
    schemaKeys(branch, prefix, out);
  }
  if (schema.items !== undefined) schemaKeys(schema.items, `${prefix}[]`, out);
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    const path = prefix === "" ? key : `${prefix}.${key}`;
    out.add(path);
    schemaKeys(sub, path, out);
  }
  return out;
}

function dataKeys(value: unknown, prefix: string, out: Set<string>): Set<string> {
  if (Array.isArray(value)) {
    for (const item of value) dataKeys(item, `${prefix}[]`, out);
  } else if (value !== null && typeof value === "object") {
    for (const [key, sub] of Object.entries(value)) {
      const path = prefix === "" ? key : `${prefix}.${key}`;
      out.add(path);
      dataKeys(sub, path, out);
    }
  }
  return out;
}

/** Every enum and const value the schema allows under a key of this name, anywhere. */
function schemaValues(schema: JsonSchema, key: string, out: Set<unknown>, here = ""): Set<unknown> {
  if (here === key) {
    for (const value of (schema.enum as unknown[] | undefined) ?? []) out.add(value);
    if (typeof schema.const === "string") out.add(schema.const);
  }
  for (const branch of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) {
    schemaValues(branch, key, out, here);
  }
  if (schema.items !== undefined) schemaValues(schema.items, key, out);
  for (const [name, sub] of Object.entries(schema.properties ?? {})) {
    schemaValues(sub, key, out, name);
  }
  return out;
}

function dataValues(value: unknown, key: string, out: Set<unknown>): Set<unknown> {
  if (Array.isArray(value)) for (const item of value) dataValues(item, key, out);
  else if (value !== null && typeof value === "object") {
    for (const [name, sub] of Object.entries(value)) {
      if (name === key) out.add(sub);
      dataValues(sub, key, out);
    }
  }
  return out;
}

describe("config/example.yaml", () => {
  const example: unknown = parse(readFileSync(join(CONFIG_DIR, "example.yaml"), "utf8"));
  const schema = configJsonSchema();

  it("uses every key of the schema", () => {
    const used = dataKeys(example, "", new Set());
    const missing = [...schemaKeys(schema, "", new Set())].filter((key) => !used.has(key));
    expect(missing, "keys config/example.yaml should show").toEqual([]);
  });

  it.each(["protocol", "type", "byte_order", "word_order", "string_byte_order"])(
    "uses every value of %s",
    (key) => {
      const used = dataValues(example, key, new Set());
      const allowed = [...schemaValues(schema, key, new Set())];
      expect(allowed.length).toBeGreaterThan(1);
      expect(allowed.filter((value) => !used.has(value))).toEqual([]);
    },
  );

  it("shows every address notation", () => {
    const addresses = [...dataValues(example, "address", new Set())].map(String);
    const forms = [
      /^C\d+$/,
      /^DI\d+$/,
      /^IR\d+$/,
      /^HR\d+$/,
      /^HR\d+\.\d+$/,
      /^4\d{4}$/,
      /^\d{6}$/,
    ];
    for (const form of forms)
      expect(
        addresses.some((a) => form.test(a)),
        String(form),
      ).toBe(true);
  });
});

describe("point 7: each example's header names every reference validate needs", () => {
  it.each(examples)("%s", (name) => {
    const lines = readFileSync(join(CONFIG_DIR, name), "utf8").split("\n");
    const headerEnd = lines.findIndex((line) => !line.startsWith("#"));
    const header = lines.slice(0, headerEnd).join("\n");
    // the references the YAML makes (outside comments), as validate resolves them
    const body = lines
      .slice(headerEnd)
      .map((line) => line.replace(/(^|\s)#.*$/, ""))
      .join("\n");
    const needed = [...body.matchAll(/\$\{(?:env|file):([^}]*)\}/g)].map((m) => m[1]!);
    expect(needed.filter((ref) => !header.includes(ref))).toEqual([]);
  });
});
