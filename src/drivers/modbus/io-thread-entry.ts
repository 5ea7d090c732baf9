/**
 * The I/O thread of one Modbus device (io-thread.ts starts it): a ModbusDriver that answers
 * the host's calls (io-thread-wire.ts). Its requests follow each other at the device's pace,
 * whatever the gateway's main thread is doing; the samples go to the main thread per read.
 *
 * The generation counts the tag maps applied here: a read names its poll group by index at a
 * generation, and a read of an older generation is read as an ad-hoc list of its tags.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";
import { sleep } from "../../lib/abort.ts";
import { GatewayError } from "../../lib/errors.ts";
import { nextDue } from "../../lib/fixed-rate.ts";
import type { Logger } from "../../lib/logger.ts";
import type { DriverContext, PollGroup } from "../types.ts";
import { ModbusDriver } from "./driver.ts";
import { SamplePacker } from "./io-thread-samples.ts";
import {
  type Call,
  type Carried,
  type GroupRef,
  type LogLevel,
  MAX_POLLS_AHEAD,
  type Reply,
  toWire,
  wireFields,
  wireSample,
} from "./io-thread-wire.ts";

const port = parentPort;
if (port === null) throw new Error("io-thread-entry runs as a worker thread only");
const start = workerData as { device: ModbusDeviceConfig; carried: Carried; generation: number };
const driver = new ModbusDriver(start.device, { ...start.carried, threaded: true });
let generation = start.generation;
/** Signals by call id; those of connect and subscribe live until close. */
const signals = new Map<number, AbortController>();
/** Aborted at close: what a scheduled poll's reads end with (see schedule()). */
const connection = new AbortController();

function post(reply: Reply): void {
  port!.postMessage(reply);
}

function logAt(level: LogLevel) {
  return (fields: unknown, msg?: string) => {
    const obj = typeof fields === "object" && fields !== null ? fields : {};
    const text = typeof fields === "string" ? fields : (msg ?? "");
    post({ kind: "log", level, fields: wireFields(obj as Record<string, unknown>), msg: text });
  };
}

/** The logger the driver gets: each line goes to the host's logger of the device. */
const log = {
  debug: logAt("debug"),
  info: logAt("info"),
  warn: logAt("warn"),
  error: logAt("error"),
  trace: () => {},
  fatal: logAt("error"),
  child: () => log,
} as unknown as Logger;

function group(ref: GroupRef | undefined): PollGroup | undefined {
  if (ref === undefined) return undefined;
  if ("index" in ref && ref.generation === generation) return driver.pollGroups()[ref.index];
  if ("index" in ref) return undefined;
  return { interval: 0, tags: ref.tags };
}

/** Numbers the names of polls' samples (io-thread-samples.ts): one table for the thread. */
const packer = new SamplePacker();

/** Polls not taken yet by the host, by schedule (call id). */
const ahead = new Map<number, number>();

function state() {
  return { ...driver.carried, connected: driver.connected };
}

/**
 * A poll group at its fixed rate until the signal aborts or a read throws (the connection is
 * gone: thrown to the host). The signal stops the schedule, not the read in progress: that one
 * ends and is sent (a regroup lets reads in progress finish on the old plan); only close
 * aborts it. A poll that comes due while MAX_POLLS_AHEAD are not taken yet is
 * skipped (logged once per run of them), and so is a poll whose time passed while one was on
 * the wire; both are counted in the next poll's `skipped`.
 */
async function schedule(id: number, wanted: PollGroup, interval: number, ctx: DriverContext) {
  ahead.set(id, 0);
  let due = performance.now();
  // spread_requests: the first poll at once, the next at the group's place in the interval
  let phase = wanted.phase ?? 0;
  /** Passed over since the last poll sent (it goes with the next), and the host's run of them. */
  let skipped = 0;
  let behind = 0;
  try {
    while (!ctx.signal.aborted) {
      if ((ahead.get(id) ?? 0) < MAX_POLLS_AHEAD) {
        if (behind > 0) {
          log.warn(
            { skipped: behind, interval },
            "Modbus polls skipped: the gateway took the samples late",
          );
          behind = 0;
        }
        const started = performance.now();
        const reading = { signal: connection.signal, log: ctx.log };
        const samples = packer.pack(await driver.read(reading, wanted));
        ahead.set(id, (ahead.get(id) ?? 0) + 1);
        const durationMs = performance.now() - started;
        post({ kind: "poll", id, samples, durationMs, skipped, state: state() });
        skipped = 0;
      } else {
        skipped++;
        behind++;
      }
      const now = performance.now();
      // a poll that outlasted its interval (a slow device): the slots it ran over are passed
      // over, as on the main thread; counted, not logged (the read duration shows it)
      const next = nextDue(due, now, interval, phase);
      phase = 0;
      due = next.due;
      skipped += next.skipped;
      await sleep(due - now, ctx.signal);
    }
  } finally {
    ahead.delete(id);
  }
}

/**
 * The group a call names. One of another tag map than this thread's cannot come (the host
 * applies a map only after this thread did); if it did, host and thread no longer agree on the
 * groups: thrown, so that the runner treats the connection as lost and a new thread starts
 * from the host's map, never silently reading other tags or none.
 */
function known(ref: GroupRef | undefined): PollGroup | undefined {
  const wanted = group(ref);
  if (ref === undefined || wanted !== undefined) return wanted;
  throw new GatewayError(
    "MODBUS_READ",
    `device ${start.device.id}: asked for a poll group of another tag map than the I/O thread's (${generation})`,
    { details: { device: start.device.id } },
  );
}

async function run(call: Exclude<Call, { op: "abort" | "taken" }>, ctx: DriverContext) {
  switch (call.op) {
    case "connect":
      await driver.connect(ctx);
      return undefined;
    case "read":
      return (await driver.read(ctx, known(call.group))).map(wireSample);
    case "subscribe":
      await driver.subscribe(ctx, (samples) =>
        post({ kind: "samples", samples: samples.map(wireSample) }),
      );
      return undefined;
    case "updateTags": {
      const applied = await driver.updateTags(call.next, ctx);
      if (applied) generation++;
      return applied;
    }
    case "poll":
      await schedule(call.id, known(call.group)!, call.interval, ctx);
      return undefined;
    case "close":
      connection.abort();
      await driver.close();
      for (const controller of signals.values()) controller.abort();
      signals.clear();
      return undefined;
  }
}

port.on("message", (call: Call) => {
  if (call.op === "abort") {
    signals.get(call.id)?.abort();
    signals.delete(call.id);
    return;
  }
  if (call.op === "taken") {
    const count = ahead.get(call.id);
    if (count !== undefined) ahead.set(call.id, Math.max(0, count - 1));
    return;
  }
  const controller = new AbortController();
  signals.set(call.id, controller);
  const lives = call.op === "connect" || call.op === "subscribe";
  const settle = (outcome: { ok: true; value: unknown } | { ok: false; error: unknown }) => {
    if (!lives) signals.delete(call.id);
    post(
      outcome.ok
        ? { kind: "result", id: call.id, ok: true, value: outcome.value, state: state() }
        : { kind: "result", id: call.id, ok: false, error: toWire(outcome.error), state: state() },
    );
  };
  run(call, { signal: controller.signal, log }).then(
    (value) => settle({ ok: true, value }),
    (error: unknown) => settle({ ok: false, error }),
  );
});
