/** The committed JSON Schema is the generated one; the schema knows which fields are secrets. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { configJsonSchema, isReferenceOnlyField } from "../../src/config/json-schema.ts";

const COMMITTED = new URL("../../config/plc2mqtt.schema.json", import.meta.url);

describe("config JSON Schema", () => {
  it("is committed as generated", () => {
    const committed: unknown = JSON.parse(readFileSync(COMMITTED, "utf8"));
    expect(
      committed,
      "config/plc2mqtt.schema.json is stale: run `node src/main.ts schema --write` (then `npx biome format --write config/plc2mqtt.schema.json`)",
    ).toEqual(configJsonSchema());
  });

  it("describes the input side: durations are patterned strings", () => {
    const mqtt = configJsonSchema().properties?.mqtt;
    expect(mqtt?.properties?.keepalive).toMatchObject({ type: "string" });
    expect(typeof mqtt?.properties?.keepalive?.pattern).toBe("string");
  });

  it("finds the fields that must be references", () => {
    expect(isReferenceOnlyField(["mqtt", "password"])).toBe(true);
    expect(isReferenceOnlyField(["mqtt", "username"])).toBe(false);
    expect(isReferenceOnlyField(["mqtt", "url"])).toBe(false);
    expect(isReferenceOnlyField(["devices", 0, "host"])).toBe(false);
    expect(isReferenceOnlyField(["devices", 0, "tags", 3, "name"])).toBe(false);
  });
});
