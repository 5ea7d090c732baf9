/**
 * Fixtures of the journal suite: a temp folder per test, options with a real CloudEvents
 * renderer, events, and a logger whose lines the test can read.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { serializeCloudEvent, toCloudEvent } from "../../src/events/cloudevent.ts";
import type { GatewayEvent } from "../../src/events/types.ts";
import type { JournalOptions, Render } from "../../src/journal/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";

export const GATEWAY = "gw-1";

export const render: Render = (event, sequence, id) => ({
  topic: `plant/${event.device}/${event.topicClass}/${event.subject}`,
  retain: event.topicClass === "status" || event.topicClass === "state",
  payload: serializeCloudEvent(toCloudEvent(event, sequence, id, { gatewayId: GATEWAY })),
});

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-journal-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function options(dir: string, overrides: Partial<JournalOptions> = {}): JournalOptions {
  return {
    dir,
    gatewayId: GATEWAY,
    maxBytes: 64 * 1024 * 1024,
    retentionMs: 7 * 86_400_000,
    commitIntervalMs: 50,
    commitMaxEvents: 1000,
    render,
    log: silentLogger(),
    ...overrides,
  };
}

let counter = 0;
/** Event times start a minute ago: recent enough for any retention the tests use. */
const BASE_TIME = Date.now() - 60_000;

export function event(overrides: Partial<GatewayEvent> = {}): GatewayEvent {
  counter++;
  return {
    type: "plc2mqtt.telemetry",
    device: "press-1",
    subject: "temperature",
    time: BASE_TIME + counter,
    data: { value: counter, previous: null, quality: "good", reason: "change" },
    topicClass: "telemetry",
    asset: { site: "berlin" },
    ...overrides,
  };
}

export function events(n: number, overrides: Partial<GatewayEvent> = {}): GatewayEvent[] {
  return Array.from({ length: n }, () => event(overrides));
}

/** A debug logger that keeps every line as an object. */
export function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: "debug" },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log, lines, messages: (msg: string) => lines.filter((l) => l.msg === msg) };
}
