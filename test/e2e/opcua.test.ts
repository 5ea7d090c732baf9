/**
 * End to end over OPC UA: the simulator's test stand (real-time schedule) -> `plc2mqtt run`
 * (the built CLI, SignAndEncrypt, subscriptions and a polled tag) -> mosquitto -> a subscriber.
 * Every event is valid against the schema; MachineState changes arrive as state changes with
 * the configured names, and each rising ResultReady as a quality.result event whose snapshot
 * holds the Result and SerialNumber of that test.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpcuaSimulator, startOpcuaSimulator } from "../../simulators/opcua/index.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import { startGateway, startSubscriber, waitUntil } from "./harness.ts";
import { writeOpcuaGatewayConfig } from "./opcua-harness.ts";

describe("plc2mqtt run with an OPC UA device, end to end", () => {
  let broker: Broker;
  let sim: OpcuaSimulator;
  const simDir = mkdtempSync(join(tmpdir(), "plc2mqtt-e2e-opcua-sim-"));

  beforeAll(async () => {
    broker = await startMosquitto();
    sim = await startOpcuaSimulator({ pkiDir: simDir, tickMs: 50, seed: 7 });
  });
  afterAll(async () => {
    await sim?.close();
    await broker?.stop();
    rmSync(simDir, { recursive: true, force: true });
  });

  it("publishes telemetry, state changes and result triggers with snapshots", async () => {
    const files = writeOpcuaGatewayConfig(sim, broker.url);
    const sub = await startSubscriber(broker.url, `${files.base}/#`);
    const gateway = startGateway(files.config);
    const of = (type: string) => sub.messages.filter((m) => m.event.type === type);
    try {
      await waitUntil(() => of("quality.result").length >= 2, 30_000, "two result events");
      await waitUntil(
        () => of("plc2mqtt.state.changed").some((m) => m.event.data.previous_state !== null),
        10_000,
        "a state change",
      );
      expect(await gateway.stop()).toBe(0);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${gateway.output().slice(-3000)}`);
    } finally {
      await gateway.kill();
      await sub.close();
    }
    const results = of("quality.result");
    for (const r of results) {
      const snapshot = r.event.data.snapshot as Record<string, unknown>;
      expect([1, 2]).toContain(snapshot.result);
      expect(snapshot.serial).toMatch(/^SN-7-\d+$/);
      expect(r.event.source).toBe("plc2mqtt://e2e-gw/stand");
    }
    // each result belongs to a different part
    const serials = results.map((r) => (r.event.data.snapshot as { serial: string }).serial);
    expect(new Set(serials).size).toBe(serials.length);
    const states = of("plc2mqtt.state.changed").map((m) => m.event.data.state);
    for (const s of states) expect(["stopped", "running", "fault"]).toContain(s);
    const telemetry = of("plc2mqtt.telemetry");
    for (const tag of ["depth", "serial", "batch", "curve", "result"]) {
      expect(
        telemetry.some((m) => m.event.subject === tag),
        tag,
      ).toBe(true);
    }
    const depth = telemetry.find((m) => m.event.subject === "depth")!;
    expect(depth.topic).toBe(`${files.base}/testsite/test/line-1/stand/telemetry/depth`);
    expect(depth.event.data.unit).toBe("mm");
    expect(depth.event.data.quality).toBe("good");
    expect(
      Array.isArray(telemetry.find((m) => m.event.subject === "curve")!.event.data.value),
    ).toBe(true);
    const status = of("plc2mqtt.device.status").map((m) => m.event.data.status);
    expect(status).toContain("connected");
  });
});
