/**
 * Issue 13.3, the OPC UA driver's part: updateTags() applies a reload's tag-map change on the
 * live session and subscription (monitored items added, replaced and deleted; new poll groups),
 * counted at the simulator: no new session, no new subscription. A change of the connection
 * settings resolves false and touches nothing.
 */
import "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceConfig } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { Driver, TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";
import { NSU, type OpcuaFixture, opcuaDevice, startOpcuaFixture } from "./opcua-fixture.ts";

let fixture: OpcuaFixture;

beforeAll(async () => {
  fixture = await startOpcuaFixture({ maxMonitoredItemsPerCall: 2 });
});
afterAll(async () => {
  await fixture?.close();
});

const ctx = { signal: new AbortController().signal, log: silentLogger() };

/** A subscribed driver for `tags`, its samples, and the tags' latest sample since a mark. */
async function running(tags: Record<string, unknown>[], fields: Record<string, unknown> = {}) {
  const device = opcuaDevice(fixture.sim.endpointUrl, { tags, ...fields });
  const driver = createDriver(device, { dataDir: fixture.dataDir });
  const samples: TagSample[] = [];
  await driver.connect(ctx);
  await driver.subscribe!(ctx, (s) => samples.push(...s));
  const since = (mark: number, tag: string) => samples.slice(mark).filter((s) => s.tag === tag);
  return { device, driver, samples, since };
}

/** The device of opcuaDevice() with other tags (and fields). */
function withTags(device: DeviceConfig, tags: Record<string, unknown>[], fields = {}) {
  return opcuaDevice(fixture.sim.endpointUrl, { id: device.id, tags, ...fields });
}

async function closeAll(...drivers: Driver[]) {
  for (const d of drivers) await d.close();
}

describe("point 3: OPC UA tag-map changes on the live session and subscription", () => {
  it("point 3: adds, replaces and removes monitored items without a new session or subscription", async () => {
    fixture.sim.setMany({ Measurement1: 1, Result: 1, MachineState: 1, SerialNumber: "SN-1" });
    const before = [
      { name: "depth", node: `${NSU}Measurement1`, type: "float64" },
      { name: "result", node: `${NSU}Result`, type: "int32" },
      { name: "state", node: `${NSU}MachineState`, type: "uint16", queue_size: 10 },
    ];
    const h = await running(before);
    try {
      await eventually(
        () => before.every((t) => h.since(0, t.name).some((s) => s.quality === "good")),
        10_000,
        "every tag good",
      );
      const counts = fixture.sim.counts();
      expect(counts).toMatchObject({ sessions: 1, subscriptions: 1, monitoredItems: 3 });

      const after = [
        { name: "depth", node: `${NSU}Measurement1`, type: "float64" },
        { name: "state", node: `${NSU}MachineState`, type: "uint16", queue_size: 5 },
        { name: "serial", node: `${NSU}SerialNumber`, type: "string" },
        { name: "ghost", node: `ns=${fixture.sim.namespaceIndex};s=TestStand.Nope` },
        { name: "batch", node: `${NSU}BatchId`, mode: "poll", poll_interval: "200ms" },
      ];
      const mark = h.samples.length;
      expect(await h.driver.updateTags!(withTags(h.device, after), ctx)).toBe(true);

      // added: a first value; changed: a fresh item, so a fresh first value; unresolvable: bad
      await eventually(
        () =>
          h.since(mark, "serial").some((s) => s.value === "SN-1") &&
          h.since(mark, "state").some((s) => s.value === 1) &&
          h.since(mark, "ghost").length > 0,
        10_000,
        "first values of the added and changed tags",
      );
      expect(h.since(mark, "ghost").at(-1)).toMatchObject({
        quality: "bad",
        reasonCode: "BadNodeIdUnknown",
      });
      // the unchanged tag kept its monitored item: no new first value
      expect(h.since(mark, "depth")).toEqual([]);
      expect(h.driver.pollGroups!()).toEqual([{ interval: 200, tags: ["batch"] }]);
      const polled = await h.driver.read!(ctx, h.driver.pollGroups!()[0]);
      expect(polled).toMatchObject([{ tag: "batch", quality: "good" }]);

      // the removed tag is gone; the unchanged and the changed ones go on
      fixture.sim.setMany({ Measurement1: 2, Result: 2, MachineState: 2 });
      await eventually(
        () =>
          h.since(mark, "depth").some((s) => s.value === 2) &&
          h.since(mark, "state").some((s) => s.value === 2),
        10_000,
        "values after the change",
      );
      expect(h.since(mark, "result")).toEqual([]);

      // depth, state (replaced), serial; result deleted; ghost refused; batch polled
      expect(fixture.sim.counts()).toEqual({ ...counts, monitoredItems: 3 });
    } finally {
      await closeAll(h.driver);
    }
  }, 30_000);

  it("point 3: a new publishing interval and a tag changing mode keep the subscription", async () => {
    fixture.sim.setMany({ Measurement1: 3, Result: 3 });
    const before = [
      { name: "depth", node: `${NSU}Measurement1` },
      { name: "result", node: `${NSU}Result`, mode: "poll" },
    ];
    const h = await running(before);
    try {
      await eventually(() => h.since(0, "depth").length > 0, 10_000, "depth");
      const counts = fixture.sim.counts();
      expect(counts.monitoredItems).toBe(1);
      const after = [
        { name: "depth", node: `${NSU}Measurement1`, mode: "poll" },
        { name: "result", node: `${NSU}Result` },
      ];
      const mark = h.samples.length;
      const next = withTags(h.device, after, { publishing_interval: "80ms" });
      expect(await h.driver.updateTags!(next, ctx)).toBe(true);
      await eventually(() => h.since(mark, "result").some((s) => s.value === 3), 10_000, "result");
      fixture.sim.setMany({ Measurement1: 4, Result: 4 });
      await eventually(() => h.since(mark, "result").some((s) => s.value === 4), 10_000, "4");
      expect(h.since(mark, "depth")).toEqual([]);
      expect(await h.driver.read!(ctx, h.driver.pollGroups!()[0])).toMatchObject([
        { tag: "depth", quality: "good", value: 4 },
      ]);
      expect(fixture.sim.counts()).toEqual(counts);
    } finally {
      await closeAll(h.driver);
    }
  }, 30_000);

  it("point 3: a change of the connection settings resolves false and touches nothing", async () => {
    fixture.sim.set("Measurement1", 5);
    const tags = [{ name: "depth", node: `${NSU}Measurement1` }];
    const h = await running(tags);
    try {
      await eventually(() => h.since(0, "depth").some((s) => s.value === 5), 10_000, "depth");
      const counts = fixture.sim.counts();
      const changes: Record<string, unknown>[] = [
        { endpoint: `opc.tcp://localhost:${fixture.sim.port}` },
        { security: { mode: "Sign" } },
        { request_timeout: "3s" },
        { session_timeout: "30s" },
        { reconnect_max: "10s" },
      ];
      for (const change of changes) {
        const next = opcuaDevice(fixture.sim.endpointUrl, {
          tags,
          ...change,
        });
        expect(await h.driver.updateTags!(next, ctx), JSON.stringify(change)).toBe(false);
      }
      const other = opcuaDevice(fixture.sim.endpointUrl, { tags, id: "x" });
      expect(await h.driver.updateTags!(other, ctx)).toBe(false);
      // still the old config, on the old session
      const mark = h.samples.length;
      fixture.sim.set("Measurement1", 6);
      await eventually(() => h.since(mark, "depth").some((s) => s.value === 6), 10_000, "6");
      expect(h.driver.connected).toBe(true);
      expect(fixture.sim.counts()).toEqual(counts);
    } finally {
      await closeAll(h.driver);
    }
  }, 30_000);

  it("point 3: a driver not connected takes the new map at its next connect", async () => {
    fixture.sim.setMany({ Measurement1: 7, SerialNumber: "SN-7" });
    const device = opcuaDevice(fixture.sim.endpointUrl, {
      tags: [{ name: "depth", node: `${NSU}Measurement1` }],
    });
    const driver = createDriver(device, { dataDir: fixture.dataDir });
    try {
      const next = withTags(device, [{ name: "serial", node: `${NSU}SerialNumber` }]);
      expect(await driver.updateTags!(next, ctx)).toBe(true);
      await driver.connect(ctx);
      expect(await driver.read!(ctx)).toMatchObject([{ tag: "serial", value: "SN-7" }]);
    } finally {
      await driver.close();
    }
  }, 30_000);
});
