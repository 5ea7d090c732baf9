/**
 * Crashes: the gateway is killed with SIGKILL 20 times at random moments under load and started
 * again each time. The subscriber sees every event that the journal had committed, in order;
 * the only duplicates are re-sends with the same id and the same content.
 */
import { describe, expect, it } from "vitest";
import {
  expectGapFreeAndComplete,
  isWill,
  journalRecords,
  lastChangeArrives,
  startGateway,
  startSubscriber,
  stopsCleanly,
  usePlantAndBroker,
  waitUntil,
  writeGatewayConfig,
} from "./harness.ts";

const KILLS = 20;

describe("kill -9", () => {
  const env = usePlantAndBroker();

  it(`loses no committed event across ${KILLS} SIGKILLs under load`, async () => {
    const files = writeGatewayConfig(env.plant.sim.port, env.broker.url);
    const sub = await startSubscriber(env.broker.url, `${files.base}/#`);
    env.plant.run(10);
    let gateway = startGateway(files.config);
    try {
      const onlineIds = () =>
        new Set(
          sub.messages
            .filter(
              (m) => m.event.data.status === "online" && m.event.type === "plc2mqtt.gateway.status",
            )
            .map((m) => m.event.id),
        ).size;
      for (let i = 0; i < KILLS; i++) {
        // wait until this run is online and publishing, then kill it at a random moment
        await waitUntil(() => onlineIds() > i, 20_000, `run ${i} to come online`);
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 700));
        await gateway.kill();
        gateway = startGateway(files.config);
      }
      await lastChangeArrives(env.plant, sub);
      expect(await stopsCleanly(gateway, sub)).toBe(0);
    } finally {
      env.plant.pause();
      await gateway.kill();
      await sub.close();
    }

    const journal = await journalRecords(files.dataDir);
    // de-duplicated by id (an id re-sent with other content throws), every journaled event is
    // there, in sequence order, without a gap: uncommitted events never took a sequence number
    const stream = expectGapFreeAndComplete(sub.messages, journal);
    // the wills the broker sent for the crashed sessions
    expect(sub.messages.filter(isWill).length).toBeGreaterThan(0);
    const onlines = stream.filter(
      (m) => m.event.type === "plc2mqtt.gateway.status" && m.event.data.status === "online",
    );
    expect(new Set(onlines.map((m) => m.event.data.started_at)).size).toBe(KILLS + 1);
  }, 300_000);
});
