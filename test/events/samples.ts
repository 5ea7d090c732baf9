/**
 * One GatewayEvent of every type of wire format v1, shaped as the engine and the app hand them
 * to the journal, for the envelope, schema and topic tests.
 */
import type { GatewayEvent } from "../../src/events/types.ts";
import { EVENT_TYPES } from "../../src/events/types.ts";

export const GATEWAY = "line1-edge-01";
export const T0 = Date.UTC(2025, 2, 14, 8, 30, 0, 123);

const press = { site: "berlin", area: "stamping", line: "line-1", equipment: "press-1" };

export const SAMPLES = {
  telemetry: {
    type: EVENT_TYPES.telemetry,
    device: "press-1",
    subject: "temperature",
    time: T0,
    data: { value: 71.5, previous: 70.9, quality: "good", unit: "degC", reason: "change" },
    topicClass: "telemetry",
    asset: press,
    context: { batch_id: "B-2025-0042" },
  },
  stateChanged: {
    type: EVENT_TYPES.stateChanged,
    device: "press-1",
    subject: "state",
    time: T0,
    data: { state: "running", previous_state: "stopped", raw: 1, previous_duration_ms: 61_000 },
    topicClass: "state",
    asset: press,
  },
  alarmChanged: {
    type: EVENT_TYPES.alarmChanged,
    device: "press-1",
    subject: "oil_pressure_low",
    time: T0,
    data: { alarm: "oil_pressure_low", active: true, bit: 3, raw: 8 },
    topicClass: "state",
    asset: press,
  },
  qualityChanged: {
    type: EVENT_TYPES.qualityChanged,
    device: "press-1",
    subject: "temperature",
    time: T0,
    data: {
      quality: "bad",
      previous_quality: "good",
      reason: "timeout after 1000 ms",
      last_good_value: 71.5,
    },
    topicClass: "quality",
    asset: press,
  },
  trigger: {
    type: "batch.completed",
    device: "press-1",
    subject: "batch_done",
    time: T0,
    data: {
      trigger: "batch_done",
      snapshot: { batch_id: "B-2025-0042", good_count: 1200, counter64: "18446744073709551615" },
      value: true,
    },
    topicClass: "event",
    asset: press,
    context: { order: "4711" },
  },
  deviceStatus: {
    type: EVENT_TYPES.deviceStatus,
    device: "press-1",
    subject: "press-1",
    time: T0,
    data: { status: "failed", error: "connect ECONNREFUSED 10.0.0.5:502" },
    topicClass: "status",
    asset: press,
  },
  gatewayStatus: {
    type: EVENT_TYPES.gatewayStatus,
    device: GATEWAY,
    subject: GATEWAY,
    time: T0,
    data: { status: "online", version: "0.1.0", started_at: new Date(T0 - 5000).toISOString() },
    topicClass: "status",
    asset: { site: "berlin" },
  },
  journalOverflow: {
    type: EVENT_TYPES.journalOverflow,
    device: GATEWAY,
    subject: "journal",
    time: T0,
    data: { dropped: 5000, oldest_kept_sequence: "00000000000000005001" },
    topicClass: "status",
    asset: { site: "berlin" },
  },
} satisfies Record<string, GatewayEvent>;
