/**
 * The rule checks as a protocol other than Modbus will call them (kinds without a Modbus
 * type, subscribed tags without a poll interval, tags whose kind is unknown), and the names
 * of tags that failed the schema. The Modbus path through loadConfig is covered by the
 * rules-*.yaml fixtures.
 */
import { describe, expect, it } from "vitest";
import { checkDevices } from "../../src/config/check-devices.ts";
import { checkRules, closest, type RuleTag } from "../../src/config/check-rules.ts";
import { formatPath } from "../../src/config/errors.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";

function tag(index: number, name: string, extra: Partial<RuleTag> = {}): RuleTag {
  return { index, name, rules: {}, ...extra };
}

function issuesOf(...args: Parameters<typeof checkRules>): string[] {
  return checkRules(...args).map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
}

describe("checkRules", () => {
  it("judges tags by kind, without a protocol type name", () => {
    const tags: RuleTag[] = [
      tag(0, "result", { kind: "json", rules: { states: { "1": "pass" } } }),
      tag(1, "count", {
        kind: "integer",
        bits: 16,
        signed: true,
        rules: { alarms: { "16": "x" } },
      }),
      tag(2, "level", { kind: "float", rules: { trigger: trigger("rising") } }),
      tag(3, "label", { kind: "string", rules: { deadband: { absolute: 1 } } }),
    ];
    expect(issuesOf({ context: [] }, tags)).toEqual([
      "tags[0].states: states need an integer or bool tag, not json",
      "tags[1].alarms.16: bit 16 does not exist in an integer (bits 0 to 15)",
      "tags[2].trigger.on: on: rising needs a bool or integer tag, not float",
      "tags[3].deadband: deadband needs a numeric tag, not string",
    ]);
  });

  it("skips timing checks of subscribed tags and type checks of tags of unknown kind", () => {
    const tags: RuleTag[] = [
      tag(0, "subscribed", { kind: "float", rules: { heartbeat: 100, stale_after: 10 } }),
      tag(4, "broken", { rules: { states: { "1": "one" }, deadband: { absolute: 1 } } }),
    ];
    expect(issuesOf({ context: ["broken"], stale_after: 10 }, tags)).toEqual([]);
  });

  it("reports at the tag's place in the YAML, not in the list it is given", () => {
    const tags = [tag(7, "a", { rules: { trigger: { ...trigger("change"), snapshot: ["b"] } } })];
    expect(issuesOf({ context: [] }, tags)).toEqual([
      'tags[7].trigger.snapshot[0]: snapshot tag "b" is not a tag of this device',
    ]);
  });

  it("does not call a tag that failed its own checks unknown", () => {
    const tags = [
      tag(0, "done", { rules: { trigger: { ...trigger("rising"), snapshot: ["x"] } } }),
    ];
    expect(issuesOf({ context: ["x"] }, tags, { yamlNames: ["done", "x"] })).toEqual([]);
  });
});

describe("checkDevices", () => {
  it("uses the YAML's tag names for references to tags that failed the schema", () => {
    const raw = {
      protocol: "modbus-tcp",
      id: "press-1",
      host: "10.0.0.5",
      context: ["speed"],
      tags: [{ name: "done", address: "C0" }],
    };
    const device = deviceSchema.parse(raw);
    const checked = { index: 0, device, given: new Set(Object.keys(raw)), tagIndex: [1] };
    expect(checkDevices([{ ...checked, tagNames: ["speed", "done"] }])).toEqual([]);
    expect(checkDevices([checked]).map((issue) => issue.message)).toEqual([
      'context tag "speed" is not a tag of this device',
    ]);
  });
});

describe("closest", () => {
  it("suggests typos, case slips and prefixes, and nothing far off", () => {
    const names = ["batch_id", "good_count", "Recipe"];
    expect(closest("goodcount", names)).toBe("good_count");
    expect(closest("recipe", names)).toBe("Recipe");
    expect(closest("batch", names)).toBe("batch_id");
    expect(closest("operator", names)).toBeUndefined();
    expect(closest("b", ["a", "c"])).toBeUndefined();
  });
});

function trigger(on: "rising" | "falling" | "change") {
  return { on, event: "thing.happened", snapshot: [] };
}
