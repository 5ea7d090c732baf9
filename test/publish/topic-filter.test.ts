import { describe, expect, it } from "vitest";
import { topicMatches } from "../../src/publish/topic-filter.ts";

describe("topicMatches (MQTT 5.0 section 4.7)", () => {
  it.each([
    ["a/b/c", "a/b/c", true],
    ["a/b/c", "a/b", false],
    ["a/+/c", "a/x/c", true],
    ["a/+/c", "a/x/y/c", false],
    ["a/+", "a/", true],
    ["a/#", "a", true],
    ["a/#", "a/b/c", true],
    ["a/#", "b/a", false],
    ["#", "a/b", true],
    ["#", "$SYS/broker", false],
    ["+/broker", "$SYS/broker", false],
    ["$SYS/#", "$SYS/broker", true],
    ["a/b", "a/b/c", false],
  ])("%s matches %s: %s", (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});
