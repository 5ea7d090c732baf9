/**
 * Days of simulated plant history, generated fast on a fake clock, for the query tests
 * (test/cli/events-query.test.ts) and the query benchmark (test/bench/query-bench.ts).
 *
 * Every device runs batches back to back. A batch of `batchSteps` steps, one step every
 * `stepMs`, on device i (devices are offset by i batches' thirds so that batches overlap):
 *   - step 0: the device's context batch_id becomes the batch's id (`B-00001`, ... numbered
 *     over all devices in start order) and `state` changes to `running`;
 *   - every step: a `temperature` telemetry event;
 *   - on every third batch, an alarm `overtemp` raised at the middle step and cleared two steps
 *     later;
 *   - the last step: `state` changes to `stopped`, then the trigger `batch.completed` fires
 *     with a snapshot {batch_id, good_count} (good_count a number: 100 + 10 * (batch % 7)).
 * Every event of a device carries data.context {batch_id, line_speed, order} (the batch
 * running, line_speed a number, order a string of digits: `1042` for batch 42). Events of one step are 1 ms apart; devices 10 ms apart.
 *
 * The generator is pure (same parameters, same events); writeHistory puts them in a real
 * journal through its own append API, its clock following the events.
 */
import type { GatewayEvent, JsonValue } from "../../src/events/types.ts";
import { openJournal } from "../../src/journal/index.ts";
import { options } from "./helpers.ts";

export interface HistoryShape {
  /** Event time of the first step, ms since the epoch. */
  start: number;
  devices: readonly string[];
  /** Steps per device (each step: one telemetry event, and the batch's events when due). */
  steps: number;
  stepMs: number;
  batchSteps: number;
}

export const batchId = (n: number) => `B-${String(n).padStart(5, "0")}`;
export const goodCount = (n: number) => 100 + 10 * (n % 7);

/** The events of the history, in time order. */
export function* history(shape: HistoryShape): Generator<GatewayEvent> {
  const { start, devices, steps, stepMs, batchSteps } = shape;
  const phase = devices.map((_, i) => Math.floor((i * batchSteps) / 3) % batchSteps);
  // batch numbers in start order over all devices: step k of device i starts a batch when
  // (k + phase[i]) % batchSteps === 0 (or k === 0)
  let nextBatch = 1;
  const batchOf: number[] = devices.map(() => 0);
  const speedOf = (k: number, i: number) => 10 + ((k * 3 + i * 5) % 11);
  for (let k = 0; k < steps; k++) {
    for (let i = 0; i < devices.length; i++) {
      const device = devices[i]!;
      const pos = (k + phase[i]!) % batchSteps;
      let t = start + k * stepMs + i * 10;
      const at = () => t++;
      const out: Omit<GatewayEvent, "context" | "asset">[] = [];
      if (k === 0 || pos === 0) {
        const previous = k === 0 ? null : "stopped";
        batchOf[i] = nextBatch++;
        out.push(state(device, at(), "running", previous, previous === null ? null : stepMs));
      }
      const batch = batchOf[i]!;
      out.push({
        type: "plc2mqtt.telemetry",
        device,
        subject: "temperature",
        time: at(),
        data: {
          value: 60 + ((k * 7 + i * 13) % 50) / 10,
          previous: null,
          quality: "good",
          unit: "degC",
          reason: "change",
        },
        topicClass: "telemetry",
      });
      const mid = Math.floor(batchSteps / 2);
      if (batch % 3 === 0 && (pos === mid || pos === mid + 2)) {
        out.push({
          type: "plc2mqtt.alarm.changed",
          device,
          subject: "overtemp",
          time: at(),
          data: { alarm: "overtemp", active: pos === mid, bit: 3, raw: pos === mid ? 8 : 0 },
          topicClass: "state",
        });
      }
      if (pos === batchSteps - 1) {
        out.push(state(device, at(), "stopped", "running", (batchSteps - 1) * stepMs));
        const snapshot: { [tag: string]: JsonValue } = {
          batch_id: batchId(batch),
          good_count: goodCount(batch),
        };
        out.push({
          type: "batch.completed",
          device,
          subject: "batch_done",
          time: at(),
          data: { trigger: "batch_done", value: true, snapshot },
          topicClass: "event",
        });
      }
      const context = {
        batch_id: batchId(batch),
        line_speed: speedOf(k, i),
        order: String(1000 + batch),
      };
      for (const e of out) yield { ...e, asset: { site: "berlin", line: "line-1" }, context };
    }
  }
}

function state(
  device: string,
  time: number,
  now: string,
  previous: string | null,
  previousDurationMs: number | null,
): Omit<GatewayEvent, "context" | "asset"> {
  return {
    type: "plc2mqtt.state.changed",
    device,
    subject: "state",
    time,
    data: {
      state: now,
      previous_state: previous,
      raw: now === "running" ? 1 : 0,
      previous_duration_ms: previousDurationMs,
    },
    topicClass: "state",
  };
}

/**
 * Appends the history to a journal in `dir` (created), `chunk` events an append, the journal's
 * clock at the last event's time; returns how many events were written.
 */
export async function writeHistory(
  dir: string,
  events: Iterable<GatewayEvent>,
  chunk = 5000,
): Promise<number> {
  let now = 0;
  const journal = await openJournal(
    options(dir, {
      maxBytes: 4 * 1024 ** 3,
      retentionMs: 3650 * 86_400_000,
      commitMaxEvents: chunk,
      now: () => now,
      integrityCheck: false,
    }),
  );
  let written = 0;
  try {
    let batch: GatewayEvent[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      now = batch.at(-1)!.time;
      written += (await journal.append(batch)).length;
      batch = [];
    };
    for (const e of events) {
      batch.push(e);
      if (batch.length >= chunk) await flush();
    }
    await flush();
  } finally {
    await journal.close();
  }
  return written;
}
