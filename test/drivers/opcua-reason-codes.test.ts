/**
 * Issue 13.4 and 13.7, the OPC UA driver's part: every bad or uncertain sample carries a
 * reasonCode beside its text (the OPC UA status name, or a catalogue code for what went wrong
 * on the gateway's side); after a namespace renumbering a fixed `ns=<i>;s=...` id says
 * BadNodeIdUnknown, not "not connected"; each tag that does not resolve is logged, named; an
 * Object node configured as a tag says what it is.
 */
import "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { ErrorCodes } from "../../src/lib/errors.ts";
import { createLogger, silentLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";
import { NSU, type OpcuaFixture, opcuaDevice, startOpcuaFixture } from "./opcua-fixture.ts";

let fixture: OpcuaFixture;

beforeAll(async () => {
  fixture = await startOpcuaFixture();
});
afterAll(async () => {
  await fixture?.close();
});

/** A code is a catalogue code or an OPC UA status name (Bad..., Uncertain...). */
function isReasonCode(code: string | undefined): boolean {
  return code !== undefined && (code in ErrorCodes || /^(Bad|Uncertain)[A-Za-z]+$/.test(code));
}

describe("point 4: OPC UA reason codes", () => {
  it("point 4: after a namespace renumbering a fixed ns= id is bad with BadNodeIdUnknown, not 'not connected'", async () => {
    fixture.sim.setMany({ Measurement1: 1, Measurement2: 2 });
    const index = fixture.sim.namespaceIndex;
    const tags = [
      { name: "fixed", node: `ns=${index};s=TestStand.Measurement1` },
      { name: "fixed_polled", node: `ns=${index};s=TestStand.Measurement2`, mode: "poll" },
      { name: "by_uri", node: `${NSU}Measurement1` },
    ];
    const device = opcuaDevice(fixture.sim.endpointUrl, { tags });
    const driver = createDriver(device, { dataDir: fixture.dataDir });
    const ctx = { signal: new AbortController().signal, log: silentLogger() };
    const samples: TagSample[] = [];
    const since = (mark: number, tag: string) => samples.slice(mark).filter((s) => s.tag === tag);
    try {
      await driver.connect(ctx);
      await driver.subscribe!(ctx, (s) => samples.push(...s));
      await eventually(() => since(0, "fixed").length > 0, 10_000, "fixed");

      let mark = samples.length;
      await fixture.sim.restart({ renumberNamespace: true });
      expect(fixture.sim.namespaceIndex).toBe(index + 1);
      await eventually(() => !driver.connected, 10_000, "the loss seen");
      await eventually(() => since(mark, "fixed").length > 0, 10_000, "bad on the loss");
      for (const tag of ["fixed", "by_uri"])
        expect(since(mark, tag).at(-1)).toMatchObject({
          quality: "bad",
          reason: expect.stringMatching(/^not connected/),
          reasonCode: "OPCUA_DISCONNECTED",
        });
      expect(await driver.read!(ctx)).toEqual(
        tags.map((t) =>
          expect.objectContaining({
            tag: t.name,
            quality: "bad",
            reasonCode: "OPCUA_DISCONNECTED",
          }),
        ),
      );

      // the runner reconnects and subscribes again
      mark = samples.length;
      await driver.connect(ctx);
      await driver.subscribe!(ctx, (s) => samples.push(...s));
      await eventually(
        () => since(mark, "fixed").length > 0 && since(mark, "by_uri").length > 0,
        10_000,
        "samples after the reconnect",
      );
      const badNode = {
        quality: "bad",
        value: null,
        reasonCode: "BadNodeIdUnknown",
        reason: expect.stringMatching(
          new RegExp(`^node ns=${index};s=TestStand\\.Measurement1: BadNodeIdUnknown: .*nsu=`),
        ),
      };
      expect(since(mark, "fixed").at(-1)).toMatchObject(badNode);
      expect(since(mark, "by_uri").at(-1)).toMatchObject({ quality: "good", value: 1 });
      const [polled] = await driver.read!(ctx, driver.pollGroups!()[0]);
      expect(polled).toMatchObject({
        ...badNode,
        reason: expect.stringMatching(/BadNodeIdUnknown/),
      });
    } finally {
      await driver.close();
    }
  }, 40_000);

  it("point 4: bad and uncertain statuses carry their status name as the code", async () => {
    fixture.sim.setMany({ Measurement1: 1, Measurement2: 2 });
    const tags = [
      { name: "depth", node: `${NSU}Measurement1` },
      { name: "force", node: `${NSU}Measurement2`, mode: "poll" },
    ];
    const device = opcuaDevice(fixture.sim.endpointUrl, { tags });
    const driver = createDriver(device, { dataDir: fixture.dataDir });
    const ctx = { signal: new AbortController().signal, log: silentLogger() };
    const samples: TagSample[] = [];
    try {
      await driver.connect(ctx);
      await driver.subscribe!(ctx, (s) => samples.push(...s));
      fixture.sim.setStatus("Measurement1", "BadSensorFailure");
      fixture.sim.setStatus("Measurement2", "UncertainLastUsableValue");
      await eventually(
        () => samples.some((s) => s.tag === "depth" && s.quality === "bad"),
        10_000,
        "bad depth",
      );
      expect(samples.filter((s) => s.tag === "depth").at(-1)).toMatchObject({
        reason: "BadSensorFailure",
        reasonCode: "BadSensorFailure",
      });
      expect(await driver.read!(ctx, driver.pollGroups!()[0])).toMatchObject([
        { quality: "uncertain", reasonCode: "UncertainLastUsableValue" },
      ]);
    } finally {
      fixture.sim.setMany({ Measurement1: 1, Measurement2: 2 });
      await driver.close();
    }
  }, 30_000);
});

describe("point 7: OPC UA tags that do not resolve", () => {
  it("point 7: each unresolved tag is logged, named, with its code; an Object is named as one", async () => {
    const index = fixture.sim.namespaceIndex;
    const tags = [
      { name: "depth", node: `${NSU}Measurement1` },
      { name: "nope_1", node: `ns=${index};s=TestStand.Nope1` },
      { name: "nope_2", node: `ns=${index};s=TestStand.Nope2` },
      { name: "nope_3", node: `ns=${index};i=4242` },
      { name: "nope_uri", node: "nsu=urn:nowhere;s=X" },
      { name: "nope_path", browse_path: "/TestStand/Nope" },
      { name: "nope_ns_path", browse_path: `/${index}:TestStand/${index}:Nope` },
      { name: "folder", node: `${NSU.slice(0, -1)}` },
    ];
    const lines: { msg: string; tag?: string; code?: string; reason?: string }[] = [];
    const log = createLogger({
      level: "warn",
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    for (const mode of ["subscribe", "poll"] as const) {
      lines.length = 0;
      const device = opcuaDevice(fixture.sim.endpointUrl, { tags, mode });
      const driver = createDriver(device, { dataDir: fixture.dataDir });
      const ctx = { signal: new AbortController().signal, log };
      const samples: TagSample[] = [];
      try {
        await driver.connect(ctx);
        if (mode === "poll") samples.push(...(await driver.read!(ctx)));
        else await driver.subscribe!(ctx, (s) => samples.push(...s));
        await eventually(
          () => tags.every((t) => samples.some((s) => s.tag === t.name)),
          10_000,
          "every tag",
        );
        const unresolved = lines.filter((l) => l.msg === "OPC UA tag unresolved");
        expect(unresolved.map((l) => l.tag)).toEqual(tags.slice(1).map((t) => t.name));
        const latest = (tag: string) => samples.filter((s) => s.tag === tag).at(-1)!;
        for (const line of unresolved) {
          expect(line.code, line.tag).toBe(latest(line.tag!).reasonCode);
          expect(line.reason, line.tag).toBe(latest(line.tag!).reason);
        }
        expect(latest("depth").quality).toBe("good");
        const codes = Object.fromEntries(
          tags.slice(1).map((t) => [t.name, latest(t.name).reasonCode]),
        );
        expect(codes).toEqual({
          nope_1: "BadNodeIdUnknown",
          nope_2: "BadNodeIdUnknown",
          nope_3: "BadNodeIdUnknown",
          nope_uri: "OPCUA_UNRESOLVED",
          nope_path: "OPCUA_UNRESOLVED",
          nope_ns_path: "BadNoMatch",
          folder: "OPCUA_NOT_A_VARIABLE",
        });
        expect(latest("folder").reason).toBe(
          `node ns=${index};s=TestStand is an Object, not a Variable: a tag must name a Variable`,
        );
        for (const s of samples.filter((x) => x.quality !== "good"))
          expect(isReasonCode(s.reasonCode), JSON.stringify(s)).toBe(true);
      } finally {
        await driver.close();
      }
    }
  }, 40_000);
});
