/** Topics from the template: the default layout, sanitising, empty levels, retained classes. */
import { describe, expect, it } from "vitest";
import { buildTopic, DEFAULT_TOPIC_TEMPLATE, isRetained } from "../../src/events/topic.ts";
import type { GatewayEvent } from "../../src/events/types.ts";
import { GATEWAY, SAMPLES } from "./samples.ts";

const ctx = { base: "plant", gateway: GATEWAY, template: DEFAULT_TOPIC_TEMPLATE };

function topic(event: GatewayEvent, over: Partial<typeof ctx> = {}): string {
  return buildTopic(event, { ...ctx, ...over });
}

describe("buildTopic", () => {
  it("lays out the default topic of each class", () => {
    expect(topic(SAMPLES.telemetry)).toBe(
      "plant/berlin/stamping/line-1/press-1/telemetry/temperature",
    );
    expect(topic(SAMPLES.stateChanged)).toBe("plant/berlin/stamping/line-1/press-1/state/state");
    expect(topic(SAMPLES.alarmChanged)).toBe(
      "plant/berlin/stamping/line-1/press-1/state/oil_pressure_low",
    );
    expect(topic(SAMPLES.qualityChanged)).toBe(
      "plant/berlin/stamping/line-1/press-1/quality/temperature",
    );
    expect(topic(SAMPLES.trigger)).toBe("plant/berlin/stamping/line-1/press-1/event/batch_done");
    expect(topic(SAMPLES.deviceStatus)).toBe("plant/berlin/stamping/line-1/press-1/status/press-1");
  });

  it("leaves equipment out for gateway-level events", () => {
    expect(topic(SAMPLES.gatewayStatus)).toBe("plant/berlin/status/line1-edge-01");
  });

  it("uses the device id as equipment when the asset has none", () => {
    const a = { ...SAMPLES.telemetry, asset: { site: "berlin" } };
    const b = { ...a, device: "press-2" };
    expect(topic(a)).toBe("plant/berlin/press-1/telemetry/temperature");
    expect(topic(b)).toBe("plant/berlin/press-2/telemetry/temperature");
  });

  it("leaves out empty levels: no //, no leading or trailing /", () => {
    const bare = { ...SAMPLES.telemetry, asset: {} };
    expect(topic(bare, { base: "" })).toBe("press-1/telemetry/temperature");
    expect(topic(bare, { base: "/plant/" })).toBe("plant/press-1/telemetry/temperature");
    expect(topic({ ...bare, asset: { site: " ", area: "", line: "l1" } })).toBe(
      "plant/l1/press-1/telemetry/temperature",
    );
    expect(topic(bare, { template: "/{base}//{site}/{class}/{name}/" })).toBe(
      "plant/telemetry/temperature",
    );
  });

  it("lower-cases and sanitises every level so a value never adds a level or a wildcard", () => {
    const hostile = {
      ...SAMPLES.telemetry,
      subject: "Temp/Zone+1#A",
      asset: {
        site: "Berlin Nord",
        area: "Stamping\tHall",
        line: "L\u00001",
        equipment: "  Press 1  ",
      },
    };
    const t = topic(hostile);
    expect(t).toBe("plant/berlin_nord/stamping_hall/l_1/press_1/telemetry/temp_zone_1_a");
    expect(t.split("/")).toHaveLength(7);
    expect(t).not.toMatch(/[+#\0\sA-Z]/);
  });

  it("keeps the levels of a multi-level base, lower case", () => {
    expect(topic(SAMPLES.gatewayStatus, { base: "Factory/Plant" })).toBe(
      "factory/plant/berlin/status/line1-edge-01",
    );
  });

  it("fills the other placeholders and literal text", () => {
    expect(topic(SAMPLES.telemetry, { template: "{base}/{gateway}/{device}/{class}/{name}" })).toBe(
      "plant/line1-edge-01/press-1/telemetry/temperature",
    );
    expect(topic(SAMPLES.telemetry, { template: "v1/{site}-{line}/{class}/x_{name}" })).toBe(
      "v1/berlin-line-1/telemetry/x_temperature",
    );
    // {base} inside a level is one value: its / cannot add levels there.
    expect(topic(SAMPLES.telemetry, { base: "a/b", template: "{base}-x/{class}/{name}" })).toBe(
      "a_b-x/telemetry/temperature",
    );
  });

  it("never starts a topic with $ (broker topics)", () => {
    expect(topic({ ...SAMPLES.telemetry, asset: { site: "$SYS" } }, { base: "" })).toBe(
      "_sys/press-1/telemetry/temperature",
    );
  });

  it("refuses unknown placeholders and templates that give nothing", () => {
    expect(() => topic(SAMPLES.telemetry, { template: "{base}/{plant}/{class}/{name}" })).toThrow(
      /topic template "\{base\}\/\{plant\}\/\{class\}\/\{name\}": unknown placeholder \{plant\}/,
    );
    expect(() => topic(SAMPLES.gatewayStatus, { base: "", template: "{area}/{line}" })).toThrow(
      /gives an empty topic/,
    );
  });
});

describe("isRetained", () => {
  it("retains status and state, not telemetry, quality or trigger events", () => {
    const retained = Object.entries(SAMPLES)
      .filter(([, e]) => isRetained(e))
      .map(([name]) => name);
    expect(retained).toEqual([
      "stateChanged",
      "alarmChanged",
      "deviceStatus",
      "gatewayStatus",
      "journalOverflow",
    ]);
  });
});
