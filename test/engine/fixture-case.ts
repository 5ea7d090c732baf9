/**
 * The format of the table-driven engine cases in test/fixtures/engine/<case>/:
 *
 * - rules.yaml: `device:` an EngineDevice as is (durations in ms), or `config:` a device as
 *   the gateway config writes it (parsed by the real schema and engineDeviceFromConfig), with
 *   an optional `gateway_site:`.
 * - input.yaml: steps in order, each `{ at: <ms>, samples: [...] }`, `{ at, tick: true }` or
 *   `{ at, flush: true }`, optionally with `next_due: <ms or null>` (nextDue() after the
 *   step). A sample is `{ tag, value, quality?, reason?, reasonCode?, sourceTime?, readTime?,
 *   device?, snapshotRead? }`: quality defaults to good, value to null, readTime to `at`, device to the
 *   rules' device; `snapshotRead: true` marks a read made at a trigger for its snapshot.
 * - expected.yaml: every event in order, each with type, subject, time, data and topicClass;
 *   device, asset, context and `at` (the step that produced it) are compared where given.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { deviceSchema } from "../../src/config/schema/root.ts";
import type { EngineDevice } from "../../src/engine/index.ts";
import { engineDeviceFromConfig } from "../../src/engine/index.ts";
import type { TagSample } from "../../src/events/sample.ts";

export interface Step {
  at: number;
  samples?: TagSample[];
  tick?: boolean;
  flush?: boolean;
  next_due?: number | null;
}

export interface FixtureCase {
  device: EngineDevice;
  steps: Step[];
  expected: Record<string, unknown>[];
}

const STEP_KEYS = new Set(["at", "samples", "tick", "flush", "next_due"]);
const SAMPLE_KEYS = new Set([
  "device",
  "tag",
  "value",
  "quality",
  "reason",
  "reasonCode",
  "sourceTime",
  "readTime",
  "snapshotRead",
]);

function read(dir: string, file: string): unknown {
  return parse(readFileSync(join(dir, file), "utf8"));
}

function fail(where: string, message: string): never {
  throw new Error(`${where}: ${message}`);
}

function deviceOf(dir: string): EngineDevice {
  const rules = read(dir, "rules.yaml") as Record<string, unknown>;
  if (rules.device !== undefined) return rules.device as EngineDevice;
  if (rules.config === undefined) fail(`${dir}/rules.yaml`, "needs device: or config:");
  const site = rules.gateway_site as string | undefined;
  return engineDeviceFromConfig(deviceSchema.parse(rules.config), site);
}

export function loadCase(dir: string): FixtureCase {
  const device = deviceOf(dir);
  const input = read(dir, "input.yaml");
  if (!Array.isArray(input)) fail(`${dir}/input.yaml`, "must be a list of steps");
  const steps = input.map((raw: Record<string, unknown>, i): Step => {
    const where = `${dir}/input.yaml step ${i}`;
    for (const key of Object.keys(raw)) if (!STEP_KEYS.has(key)) fail(where, `unknown key ${key}`);
    if (typeof raw.at !== "number") fail(where, "needs at: <ms>");
    const at = raw.at;
    const samples = (raw.samples as Record<string, unknown>[] | undefined)?.map((s) => {
      for (const key of Object.keys(s)) if (!SAMPLE_KEYS.has(key)) fail(where, `unknown ${key}`);
      return { device: device.id, value: null, quality: "good", readTime: at, ...s } as TagSample;
    });
    const kinds = [samples !== undefined, raw.tick === true, raw.flush === true];
    if (kinds.filter(Boolean).length !== 1) fail(where, "give one of samples, tick or flush");
    return { ...(raw as unknown as Step), samples };
  });
  const expected = read(dir, "expected.yaml") ?? [];
  if (!Array.isArray(expected)) fail(`${dir}/expected.yaml`, "must be a list of events");
  return { device, steps, expected };
}
