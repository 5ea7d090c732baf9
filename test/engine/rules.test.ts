/** Tables for the pure rule helpers: deadband, trigger edges, state keys, alarm words. */
import { describe, expect, it } from "vitest";
import { alarmChanges, alarmWord } from "../../src/engine/alarms.ts";
import { exceedsDeadband } from "../../src/engine/deadband.ts";
import { stateName } from "../../src/engine/states.ts";
import { triggerFires } from "../../src/engine/triggers.ts";
import type { EngineTag, TriggerRule } from "../../src/engine/types.ts";
import type { TagValue } from "../../src/events/sample.ts";

describe("exceedsDeadband", () => {
  const float = (deadband?: EngineTag["deadband"], range?: EngineTag["range"]): EngineTag => ({
    name: "t",
    valueType: "float",
    ...(deadband ? { deadband } : {}),
    ...(range ? { range } : {}),
  });
  const cases: [string, EngineTag, TagValue, TagValue, boolean][] = [
    ["no deadband, same", float(), 1, 1, false],
    ["no deadband, tiny change", float(), 1, 1 + 1e-12, true],
    ["absolute 0 still reports a real change", float({ absolute: 0 }), 1e6, 1e6 + 1e-6, true],
    ["absolute edge", float({ absolute: 0.5 }), 10, 10.5, false],
    ["absolute past", float({ absolute: 0.5 }), 10, 10.51, true],
    ["absolute, float noise at the edge", float({ absolute: 0.1 }), 0.2, 0.3, false],
    ["percent of range", float({ percent: 10 }, { min: 0, max: 50 }), 0, 5.01, true],
    ["percent of range, edge", float({ percent: 10 }, { min: 0, max: 50 }), 0, -5, false],
    ["percent of last, from 0", float({ percent: 10 }), 0, 0.001, true],
    ["percent of last, negative base", float({ percent: 10 }), -100, -110, false],
    ["percent of last, negative base past", float({ percent: 10 }), -100, -89.9, true],
    [
      "64-bit text integers are numbers",
      { name: "e", valueType: "integer", deadband: { absolute: 5 } },
      "9007199254740993",
      "9007199254740997",
      false,
    ],
    [
      "strings ignore deadbands",
      { name: "s", valueType: "string", deadband: { absolute: 5 } },
      "1",
      "2",
      true,
    ],
    ["bools", { name: "b", valueType: "bool" }, false, false, false],
  ];
  it.each(cases)("%s", (_name, tag, last, value, expected) => {
    expect(exceedsDeadband(tag, last, value)).toBe(expected);
  });
});

describe("triggerFires", () => {
  const rule = (on: TriggerRule["on"], value?: TriggerRule["value"]): TriggerRule => ({
    on,
    event: "x.y",
    snapshot: [],
    ...(value === undefined ? {} : { value }),
  });
  const cases: [string, TriggerRule, TagValue | undefined, TagValue, boolean][] = [
    ["first sight never fires", rule("rising"), undefined, true, false],
    ["rising bool", rule("rising"), false, true, true],
    ["rising 0 -> non-zero", rule("rising"), 0, 7, true],
    ["rising non-zero -> non-zero", rule("rising"), 3, 7, false],
    ["rising on a fall", rule("rising"), true, false, false],
    ["falling", rule("falling"), 5, 0, true],
    ["falling stays low", rule("falling"), 0, 0, false],
    ["change", rule("change"), 1, 2, true],
    ["change, same", rule("change"), "a", "a", false],
    ["value becomes equal", rule("value", 2), 1, 2, true],
    ["value stays equal", rule("value", 2), 2, 2, false],
    ["value as text", rule("value", 2), 1, "2", true],
    ["value bool", rule("value", true), false, true, true],
    ["value bool is not 1", rule("value", true), 0, 1, false],
  ];
  it.each(cases)("%s", (_name, r, previous, value, expected) => {
    expect(triggerFires(r, previous === undefined ? undefined : { value: previous }, value)).toBe(
      expected,
    );
  });
});

describe("stateName", () => {
  it("keys raw values as text, bools also as 1/0, unknown ones as unknown:<raw>", () => {
    expect(stateName({ "1": "on", "0": "off" }, true)).toBe("on");
    expect(stateName({ true: "open", "1": "one" }, true)).toBe("open");
    expect(stateName({ "0": "off" }, false)).toBe("off");
    expect(stateName({ "0": "off" }, 3)).toBe("unknown:3");
    expect(stateName({ "0": "off" }, true)).toBe("unknown:true");
    expect(stateName({}, "constructor")).toBe("unknown:constructor");
  });
});

describe("alarm words", () => {
  it("reads integers, 64-bit text and bools; not other things", () => {
    expect(alarmWord(5)).toBe(5n);
    expect(alarmWord(-1)).toBe(-1n);
    expect(alarmWord("18446744073709551615")).toBe(2n ** 64n - 1n);
    expect(alarmWord(true)).toBe(1n);
    expect(alarmWord("abc")).toBeUndefined();
    expect(alarmWord(null)).toBeUndefined();
  });

  it("sees bit 63 of a uint64 word", () => {
    const word = alarmWord("9223372036854775808")!;
    const drafts = alarmChanges({ "63": "top", "0": "low" }, 0n, word, "9223372036854775808", 5);
    expect(drafts.map((d) => [d.subject, d.data.active, d.data.bit])).toEqual([["top", true, 63]]);
  });
});
