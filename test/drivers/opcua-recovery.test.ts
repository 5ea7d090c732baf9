/**
 * Recovery and server limits under the DriverRunner: a server with small operation limits
 * (reads and monitored item creation split to fit), an unresolvable node (bad with the reason,
 * the others work), a device mixing subscribed and polled tags, and the simulator restarted
 * with the same and with renumbered namespaces: tags go bad, then come back good with fresh
 * values, without restarting anything.
 */
import "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DriverRunner } from "../../src/app/driver-runner.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";
import {
  NSU,
  OPCUA_TAGS,
  type OpcuaFixture,
  opcuaDevice,
  startOpcuaFixture,
} from "./opcua-fixture.ts";

let fixture: OpcuaFixture;

beforeAll(async () => {
  fixture = await startOpcuaFixture({ maxNodesPerRead: 4, maxMonitoredItemsPerCall: 3 });
});
afterAll(async () => {
  await fixture?.close();
});

describe("OPC UA recovery under the runner", () => {
  it("survives restarts (same and renumbered namespaces): bad, then good with fresh values", async () => {
    const tags = [
      ...OPCUA_TAGS.map((t) => (t.name === "depth" ? { ...t, deadband: { absolute: 0.01 } } : t)),
      { name: "ghost", node: `${NSU}Nope` },
      { name: "batch", node: `${NSU}BatchId`, mode: "poll", poll_interval: "50ms" },
    ];
    const device = opcuaDevice(fixture.sim.endpointUrl, { tags });
    const seen: TagSample[] = [];
    const runner = new DriverRunner({
      driver: createDriver(device, { dataDir: fixture.dataDir }),
      log: silentLogger(),
      onSamples: (s) => seen.push(...s),
      reconnect: { minMs: 50, maxMs: 300 },
    });
    const latest = (tag: string, from = 0) =>
      seen
        .slice(from)
        .filter((s) => s.tag === tag)
        .at(-1);
    runner.start();
    try {
      await eventually(
        () => tags.every((t) => t.name === "ghost" || latest(t.name)?.quality !== undefined),
        15_000,
        "a sample for every tag",
      );
      for (const t of tags) {
        if (t.name === "ghost" || t.name === "status") continue;
        expect(latest(t.name)?.quality, t.name).toBe("good");
      }
      await eventually(() => latest("ghost") !== undefined, 5000, "the ghost tag");
      expect(latest("ghost")).toMatchObject({ quality: "bad", value: null });
      expect(latest("ghost")?.reason).toMatch(/BadNodeIdUnknown/);

      let value = 20;
      for (const renumber of [false, true]) {
        const index = fixture.sim.namespaceIndex;
        const mark = seen.length;
        await fixture.sim.restart({ renumberNamespace: renumber });
        expect(fixture.sim.namespaceIndex).toBe(renumber ? index + 1 : index);
        await eventually(
          () =>
            ["depth", "batch"].every((tag) =>
              seen.slice(mark).some((s) => s.tag === tag && s.quality === "bad"),
            ),
          10_000,
          "bad samples after the restart",
        );
        value += 1;
        fixture.sim.set("Measurement1", value);
        fixture.sim.set("BatchId", `B-${value}`);
        await eventually(
          () =>
            latest("depth", mark)?.value === value && latest("batch", mark)?.value === `B-${value}`,
          15_000,
          "fresh good values after the restart",
        );
        expect(latest("depth", mark)?.quality).toBe("good");
        // serial is not written here: its value after the restart comes in its own time (a CI
        // run asserted it at once and found it still bad)
        await eventually(
          () => latest("serial", mark)?.quality === "good",
          15_000,
          "serial good again",
        );
      }
    } finally {
      await runner.stop();
    }
  });
});
