/**
 * Runs every table-driven engine case in test/fixtures/engine/<case>/ (format in
 * fixture-case.ts) through the real engine and compares the events with expected.yaml.
 * Every event must also survive JSON as it is (no NaN, no undefined), and its CloudEvents
 * document (the real envelope code) must pass the published event JSON Schema.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/index.ts";
import { cloudEventId, serializeCloudEvent, toCloudEvent } from "../../src/events/cloudevent.ts";
import type { GatewayEvent } from "../../src/events/types.ts";
import { assertValidEvent } from "../support/event-schema.ts";
import { loadCase } from "./fixture-case.ts";

const FIXTURES = join(import.meta.dirname, "../fixtures/engine");
const CORE = ["type", "subject", "time", "data", "topicClass"] as const;
const OPTIONAL = ["device", "asset", "context", "at"] as const;
const GATEWAY = { gatewayId: "edge-1" };

const cases = readdirSync(FIXTURES, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

/** The actual event as the expected one describes it: the core fields, plus what it gives. */
function project(event: GatewayEvent & { at: number }, want: Record<string, unknown> = {}) {
  const out: Record<string, unknown> = {};
  for (const key of CORE) out[key] = event[key];
  for (const key of OPTIONAL) if (key in want) out[key] = event[key];
  return out;
}

describe("engine fixtures", () => {
  it("has the cases the contract names", () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases)("%s", (name) => {
    const { device, steps, expected } = loadCase(join(FIXTURES, name));
    const engine = createEngine([device]);
    const actual: (GatewayEvent & { at: number })[] = [];
    for (const step of steps) {
      const events = step.samples
        ? engine.apply(step.samples, step.at)
        : step.tick
          ? engine.tick(step.at)
          : engine.flush(step.at);
      for (const event of events) {
        expect(JSON.parse(JSON.stringify(event))).toStrictEqual(event);
        const sequence = BigInt(actual.length + 1);
        const id = cloudEventId("fixture", sequence);
        assertValidEvent(serializeCloudEvent(toCloudEvent(event, sequence, id, GATEWAY)));
        actual.push({ ...event, at: step.at });
      }
      if (step.next_due !== undefined) {
        expect(engine.nextDue() ?? null, `nextDue() after the step at ${step.at}`).toBe(
          step.next_due,
        );
      }
    }
    expect(actual.map((event, i) => project(event, expected[i]))).toEqual(expected);
  });
});
