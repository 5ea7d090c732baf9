/**
 * The northbound path, measured: events in the real sqlite journal drained by the real
 * publisher to a real mosquitto (set_tcp_nodelay on), QoS 1, each marked on its PUBACK.
 * In-flight window 1 against 100 in the same run shows what pipelining buys.
 */
import { rmSync } from "node:fs";
import { openJournal } from "../../src/journal/index.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { Publisher } from "../../src/publish/index.ts";
import { events, options, tempDir } from "../journal/helpers.ts";
import { mqttConfig, testStatus } from "../publish/fixtures.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import type { BenchResult } from "./result.ts";

async function drain(brokerUrl: string, count: number, maxInFlight: number): Promise<number> {
  const tmp = tempDir();
  const journal = await openJournal(options(tmp.dir, { maxBytes: 1024 ** 3 }));
  try {
    const input = events(count);
    for (let i = 0; i < input.length; i += 1000) await journal.append(input.slice(i, i + 1000));
    const publisher = new Publisher({
      journal,
      mqtt: mqttConfig(brokerUrl, { max_in_flight: maxInFlight }),
      clientId: `bench-${maxInFlight}`,
      status: testStatus,
      log: silentLogger(),
    });
    const started = performance.now();
    publisher.start();
    while (journal.stats().pending > 0) await new Promise((r) => setTimeout(r, 5));
    const seconds = (performance.now() - started) / 1000;
    await publisher.stop(5000);
    return count / seconds;
  } finally {
    await journal.close();
    tmp.remove();
  }
}

export async function publishThroughput(): Promise<BenchResult[]> {
  const broker = await startMosquitto();
  try {
    const windowed = await drain(broker.url, 20_000, 100);
    const single = await drain(broker.url, 2_000, 1);
    return [
      {
        bench: "publish.journal_to_broker",
        metric: "events_per_s_in_flight_100",
        value: windowed,
        unit: "events/s",
      },
      {
        bench: "publish.journal_to_broker",
        metric: "events_per_s_in_flight_1",
        value: single,
        unit: "events/s",
      },
      {
        bench: "publish.pipelining",
        metric: "ratio_in_flight_100_vs_1",
        value: windowed / single,
        unit: "x",
        target: "a window of 100 at least 3x one message at a time",
        pass: windowed >= 3 * single,
      },
    ];
  } finally {
    await broker.stop();
    rmSync(broker.dir, { recursive: true, force: true });
  }
}
