/**
 * The journal's render (src/app/render.ts): the topic of every event is the one buildTopic
 * gives for it, however the topic cache is hit: tags of several devices and classes that share
 * names, an asset that changes (a reload), and more tags than the cache keeps.
 */
import { describe, expect, it } from "vitest";
import { createRender, topicCache } from "../../src/app/render.ts";
import type { GatewayConfig } from "../../src/config/schema/root.ts";
import { buildTopic } from "../../src/events/topic.ts";
import type { GatewayEvent, TopicClass } from "../../src/events/types.ts";

const template = "{base}/{site}/{line}/{equipment}/{class}/{name}";
const config = {
  gateway: { id: "gw-1" },
  mqtt: { base_topic: "plant", topic_template: template },
} as unknown as GatewayConfig;
const context = { base: "plant", gateway: "gw-1", template };

function event(
  device: string,
  topicClass: TopicClass,
  subject: string,
  asset: GatewayEvent["asset"],
): GatewayEvent {
  return {
    type: topicClass === "telemetry" ? "plc2mqtt.telemetry" : "plc2mqtt.state.changed",
    device,
    subject,
    time: 1_796_595_874_312,
    data: { value: 1 },
    topicClass,
    asset,
  };
}

describe("render", () => {
  it("gives each event its own topic across devices, classes and names that repeat", () => {
    const render = createRender(config);
    const assets = { a: { site: "north", line: "l1" }, b: { site: "south", line: "l2" } };
    const classes: TopicClass[] = ["telemetry", "state", "event"];
    for (let round = 0; round < 3; round++) {
      for (const device of ["a", "b"] as const) {
        for (const topicClass of classes) {
          for (const subject of ["speed", "temp", "a", "b"]) {
            const e = event(device, topicClass, subject, assets[device]);
            expect(render(e, 1n, "id").topic).toBe(buildTopic(e, context));
          }
        }
      }
    }
  });

  it("follows a device's new asset (a reload), and back", () => {
    const render = createRender(config);
    const before = { site: "north", line: "l1", equipment: "press" };
    const after = { site: "north", line: "l2", equipment: "press-2" };
    const topic = (asset: GatewayEvent["asset"]) =>
      render(event("plc", "telemetry", "speed", asset), 1n, "id").topic;
    expect(topic(before)).toBe("plant/north/l1/press/telemetry/speed");
    expect(topic(after)).toBe("plant/north/l2/press-2/telemetry/speed");
    expect(topic(before)).toBe("plant/north/l1/press/telemetry/speed");
  });

  it("stays right past the number of topics it keeps", () => {
    const render = createRender(config);
    const asset = { site: "north" };
    for (let i = 0; i < 100_050; i++) {
      const e = event("plc", "telemetry", `r${i}`, asset);
      const { topic } = render(e, BigInt(i + 1), "id");
      if (i % 997 === 0 || i >= 99_990) expect(topic).toBe(buildTopic(e, context));
    }
    // the first tags again, after the cache was emptied
    for (let i = 0; i < 10; i++) {
      const e = event("plc", "telemetry", `r${i}`, asset);
      expect(render(e, 1n, "id").topic).toBe(`plant/north/plc/telemetry/r${i}`);
    }
  });

  it("never holds more topics than its bound, and stays right when it empties", () => {
    const cache = topicCache(context, 10);
    const asset = { site: "north" };
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 25; i++) {
        const e = event(i % 2 === 0 ? "a" : "b", "telemetry", `r${i}`, asset);
        expect(cache.topicOf(e)).toBe(buildTopic(e, context));
        expect(cache.size()).toBeLessThanOrEqual(10);
      }
    }
    expect(cache.size()).toBeGreaterThan(0);
  });
});
