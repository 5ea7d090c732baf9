/**
 * The Modbus line contract, run for every framing (TCP, RTU over TCP, RTU on a serial line):
 * a reply that comes late, twice, torn in pieces or unasked never produces a value from
 * another request. The tags of the request concerned go bad with a reason, and come back good
 * with the right values. Issue 8, point 1: an RTU reply delayed past the timeout was taken as
 * the answer to the next request, and every later poll read `a=222 b=333 c=111`, all good.
 *
 * Each case reads three one-register tags in three requests (max_gap 0), 111, 222 and 333,
 * changes them to new values once the fault is cleared, and checks every sample of every poll:
 * good means the value the simulator holds for that tag at that moment, nothing else.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ModbusSimulator } from "../../simulators/modbus/index.ts";
import { type DeviceConfig, deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { Driver, TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { expectHandlesBackTo, openHandles } from "../support/resources.ts";

export interface LineFixture {
  readonly sim: ModbusSimulator;
  /** Connection fields of the device (protocol, host and port, or serial). */
  readonly link: Record<string, unknown>;
  /** MBAP: replies carry a transaction id, so a stray copy is recognised and dropped. */
  readonly transactionIds: boolean;
  close(): Promise<void>;
}

const log = silentLogger();
const ctx = () => ({ signal: new AbortController().signal, log });
const ADDRESS = { a: "HR0", b: "HR10", c: "HR20" } as const;
type Tag = keyof typeof ADDRESS;
const TAGS = Object.keys(ADDRESS) as Tag[];

function device(link: Record<string, unknown>): DeviceConfig {
  return deviceSchema.parse({
    id: "line",
    unit_id: 1,
    request_timeout: "300ms",
    max_gap: 0,
    tags: TAGS.map((name) => ({ name, address: ADDRESS[name], type: "uint16" })),
    ...link,
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function modbusLineContract(name: string, start: () => Promise<LineFixture>) {
  describe(`Modbus line contract: ${name}`, () => {
    let fixture: LineFixture;
    let driver: Driver;
    let baseline: Record<string, number>;
    let round = 0;

    /** Puts fresh values at the simulator and returns them: a=round*1000+111, ... */
    function setValues(r = ++round): Record<Tag, number> {
      const values = { a: r * 1000 + 111, b: r * 1000 + 222, c: r * 1000 + 333 };
      for (const tag of TAGS) fixture.sim.setRegisters(1, ADDRESS[tag], [values[tag]]);
      return values;
    }

    /** One poll: every good sample carries the value held now; returns the samples by tag. */
    async function poll(expected: Record<Tag, number>): Promise<Record<Tag, TagSample>> {
      if (!driver.connected) await driver.connect(ctx()).catch(() => {});
      const samples = await driver.read!(ctx());
      const got = Object.fromEntries(samples.map((s) => [s.tag, s])) as Record<Tag, TagSample>;
      for (const tag of TAGS) {
        const s = got[tag];
        expect(s, `sample for ${tag}`).toBeDefined();
        if (s.quality === "good") {
          expect(s.value, `${tag} is good: it must hold its own value`).toBe(expected[tag]);
        } else {
          expect(s.value).toBeNull();
          expect(s.reason, `${tag} is bad: it must say why`).toBeTruthy();
        }
      }
      return got;
    }

    /**
     * Polls back to back, as the runner does, for at least `minMs` (so that anything late
     * arrives meanwhile) and until every tag is good, never a wrong value on the way; then
     * twice more, all good.
     */
    async function recovers(expected: Record<Tag, number>, minMs = 700): Promise<void> {
      const started = Date.now();
      while (Date.now() - started < 15_000) {
        const got = await poll(expected);
        const good = TAGS.every((t) => got[t].quality === "good");
        if (good && Date.now() - started >= minMs) {
          for (let j = 0; j < 2; j++) {
            const again = await poll(expected);
            for (const t of TAGS) expect(again[t].quality, again[t].reason).toBe("good");
          }
          return;
        }
      }
      throw new Error("not every tag came back good");
    }

    beforeAll(async () => {
      baseline = openHandles();
      fixture = await start();
    });
    afterAll(async () => {
      await driver?.close();
      await fixture?.close();
      await expectHandlesBackTo(baseline);
    });
    beforeEach(async () => {
      fixture.sim.faults.clear();
      await driver?.close();
      driver = createDriver(device(fixture.link));
      await driver.connect(ctx());
      await recovers(setValues(), 0);
    });

    it("a reply delayed past the timeout never lands on the next request (the issue's case)", async () => {
      const first = setValues();
      fixture.sim.faults.delay(400, { address: 0 });
      const got = await poll(first);
      expect(got.a.quality).toBe("bad");
      expect(got.a.reason).toMatch(/no response within 300 ms/);
      fixture.sim.faults.clear();
      const next = setValues();
      await recovers(next);
    });

    it("a reply delayed past the timeout on every poll never shifts the others", async () => {
      const values = setValues();
      fixture.sim.faults.delay(400, { address: 0 });
      for (let i = 0; i < 3; i++) {
        const got = await poll(values);
        expect(got.a.quality).toBe("bad");
      }
      fixture.sim.faults.clear();
      await recovers(setValues());
    });

    it("a reply sent twice back to back never answers the next request", async () => {
      const values = setValues();
      fixture.sim.faults.duplicate(0, { address: 10 });
      const got = await poll(values);
      if (!fixture.transactionIds) {
        expect(got.b.quality).toBe("bad");
        expect(got.b.reason).toMatch(/unexpected bytes after the reply/);
      }
      fixture.sim.faults.clear();
      await recovers(setValues());
    });

    it("a second copy of a reply, arriving while the line is idle, is never taken", async () => {
      const values = setValues();
      fixture.sim.faults.duplicate(100, { address: 0 });
      const got = await poll(values);
      expect(got.a).toMatchObject({ quality: "good", value: values.a });
      fixture.sim.faults.clear();
      const next = setValues();
      await sleep(200); // the copy comes in between two polls
      await recovers(next);
    });

    it("an unsolicited frame between two polls is never taken as a reply", async () => {
      const values = setValues();
      for (const unitId of [1, 2]) {
        expect(fixture.sim.inject({ unitId, functionCode: 3, values: [999] })).toBe(1);
      }
      await sleep(20);
      const got = await poll(values);
      for (const tag of TAGS) expect(got[tag].value).not.toBe(999);
      await recovers(values);
    });

    it("a reply torn in two within the timeout is accepted whole", async () => {
      const values = setValues();
      fixture.sim.faults.torn(100, { address: 10 });
      const got = await poll(values);
      for (const tag of TAGS) expect(got[tag]).toMatchObject({ quality: "good" });
    });

    it("a reply torn past the timeout: its rest is never glued onto the next request", async () => {
      const values = setValues();
      fixture.sim.faults.torn(400, { address: 0 });
      const got = await poll(values);
      expect(got.a.quality).toBe("bad");
      expect(got.a.reason).toMatch(/no response within 300 ms/);
      fixture.sim.faults.clear();
      await recovers(setValues());
    });

    it("a reply from another unit or with the wrong byte count is bad, never a value", async () => {
      const values = setValues();
      fixture.sim.faults.malformed("wrong-transaction-id", { address: 0 });
      fixture.sim.faults.malformed("byte-count-mismatch", { address: 10 });
      const got = await poll(values);
      expect(got.a.quality).toBe("bad");
      expect(got.b.quality).toBe("bad");
      if (!fixture.transactionIds) {
        expect(got.a.reason).toMatch(/unexpected reply from unit 2/);
        expect(got.b.reason).toMatch(/unexpected reply: byte count 4, expected 2/);
      }
      fixture.sim.faults.clear();
      await recovers(setValues());
    });
  });
}
