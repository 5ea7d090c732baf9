/**
 * CPU cost of the durable path's journal alone, per event, as the gateway drives it at a
 * steady pace (issue 12: where the gateway's CPU goes): batches of `batch` telemetry events
 * every `every` ms (default 125 every 12.5 ms: 1,000 registers read in 8 requests, every
 * 100 ms), each acknowledged once committed (the publisher's PUBACKs move the cursor), the
 * journal's own commit timing, checkpoints and cursor saves. Prints one JSON line: the events
 * appended, user and system CPU microseconds per event, and the events pending at the end.
 *
 *   node test/bench/journal-cost.ts [seconds=20] [dir=$TMPDIR] [commit_interval_ms=50] \
 *     [max_mb=512]
 *
 * A small max_mb (say 16) measures a journal that is full, as a gateway's is after its first
 * hours: each commit then also deletes as many published records as it adds (the size policy).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRender } from "../../src/app/render.ts";
import type { GatewayConfig } from "../../src/config/schema/root.ts";
import type { GatewayEvent } from "../../src/events/types.ts";
import { openJournal } from "../../src/journal/index.ts";
import { silentLogger } from "../../src/lib/logger.ts";

const seconds = Number(process.argv[2] ?? 20);
const dir = mkdtempSync(join(process.argv[3] ?? tmpdir(), "plc2mqtt-journal-cost-"));
const batch = 125;
const every = 12.5;
const render = createRender({
  gateway: { id: "bench-1" },
  mqtt: { base_topic: "plant" },
} as unknown as GatewayConfig);
const asset = Object.freeze({ site: "bench" });
let tick = 0;
const events = (): GatewayEvent[] =>
  Array.from({ length: batch }, (_, i) => ({
    type: "plc2mqtt.telemetry",
    device: "line1",
    subject: `r${(tick * batch + i) % 1000}`,
    time: Date.now(),
    data: { previous: tick, quality: "good", reason: "change", value: tick + 1 },
    topicClass: "telemetry",
    asset,
  }));
try {
  const journal = await openJournal({
    dir,
    gatewayId: "bench-1",
    maxBytes: Number(process.argv[5] ?? 512) * 1024 * 1024,
    retentionMs: 7 * 86_400_000,
    commitIntervalMs: Number(process.argv[4] ?? 50),
    commitMaxEvents: 1000,
    render,
    log: silentLogger(),
  });
  const start = performance.now();
  const cpu = process.cpuUsage();
  let appended = 0;
  const pending: Promise<void>[] = [];
  while (performance.now() - start < seconds * 1000) {
    tick++;
    pending.push(
      journal.append(events()).then((records) => {
        journal.markPublished(records.map((r) => r.sequence));
      }),
    );
    appended += batch;
    const due = start + tick * every;
    await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
  }
  await Promise.all(pending);
  const used = process.cpuUsage(cpu);
  const stats = journal.stats();
  await journal.close();
  console.log(
    JSON.stringify({
      events: appended,
      user_us_per_event: +(used.user / appended).toFixed(2),
      system_us_per_event: +(used.system / appended).toFixed(2),
      pending: stats.pending,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
