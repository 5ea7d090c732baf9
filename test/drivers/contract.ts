/**
 * The driver contract suite: every driver runs it against its simulator. It checks what the
 * runner relies on: connect, read every tag with the right values, close twice, abort during
 * connect, survive the server dropping the connection and read again after reconnecting, and
 * leave no socket or timer behind.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DriverRunner } from "../../src/app/driver-runner.ts";
import type { Driver, TagSample, TagValue } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { eventually, expectHandlesBackTo, openHandles } from "../support/resources.ts";

export interface ContractFixture {
  /** A new driver for the fixture's device (no I/O yet). */
  driver(): Driver;
  /** Puts fresh known values at the server; returns what each tag must read as. */
  setValues(round: number): Promise<Record<string, TagValue>>;
  /** The server ends every connection (and, for a serial line, the line goes away and comes back). */
  dropServer(): Promise<void>;
  close(): Promise<void>;
}

const log = silentLogger();

function ctx(signal = new AbortController().signal) {
  return { signal, log };
}

function byTag(samples: readonly TagSample[]): Record<string, TagSample> {
  return Object.fromEntries(samples.map((s) => [s.tag, s]));
}

function expectValues(samples: readonly TagSample[], expected: Record<string, TagValue>) {
  const got = byTag(samples);
  for (const [tag, value] of Object.entries(expected)) {
    expect(got[tag], `sample for ${tag}`).toBeDefined();
    expect(got[tag]!.quality, `${tag}: ${got[tag]!.reason ?? ""}`).toBe("good");
    if (typeof value === "number" && !Number.isInteger(value))
      expect(got[tag]!.value).toBeCloseTo(value, 4);
    else expect(got[tag]!.value).toEqual(value);
  }
  expect(Object.keys(got).sort()).toEqual(Object.keys(expected).sort());
}

export function driverContract(name: string, start: () => Promise<ContractFixture>) {
  describe(`driver contract: ${name}`, () => {
    let fixture: ContractFixture;
    let baseline: Record<string, number>;

    beforeAll(async () => {
      baseline = openHandles();
      fixture = await start();
    });
    afterAll(async () => {
      await fixture?.close();
      await expectHandlesBackTo(baseline);
    });

    it("connects, reads every tag with its value, and closes twice", async () => {
      const driver = fixture.driver();
      expect(driver.connected).toBe(false);
      await driver.connect(ctx());
      expect(driver.connected).toBe(true);
      for (const round of [1, 2]) {
        const expected = await fixture.setValues(round);
        const samples = await driver.read!(ctx());
        expectValues(samples, expected);
        for (const s of samples) expect(s.device).toBe(driver.id);
      }
      await driver.close();
      expect(driver.connected).toBe(false);
      await driver.close();
    });

    it("reads with bad quality and a reason, without throwing, when not connected", async () => {
      const driver = fixture.driver();
      const samples = await driver.read!(ctx());
      expect(samples.length).toBeGreaterThan(0);
      for (const s of samples) {
        expect(s.quality).toBe("bad");
        expect(s.reason).toBeTruthy();
        expect(s.value).toBeNull();
      }
      await driver.close();
    });

    it("stops connecting when aborted and leaves nothing open", async () => {
      const before = openHandles();
      const driver = fixture.driver();
      const controller = new AbortController();
      const connecting = driver.connect(ctx(controller.signal));
      controller.abort(new Error("test abort"));
      await expect(connecting).rejects.toMatchObject({ code: "ABORTED" });
      expect(driver.connected).toBe(false);
      await driver.close();
      await expectHandlesBackTo(before);
      // nothing of the aborted attempt holds the device: a new driver connects at once
      const again = fixture.driver();
      await again.connect(ctx());
      expect(again.connected).toBe(true);
      await again.close();
    });

    it("reports the dropped connection as bad samples, then reads again after reconnecting", async () => {
      const driver = fixture.driver();
      await driver.connect(ctx());
      await fixture.dropServer();
      await eventually(
        async () => {
          const samples = await driver.read!(ctx());
          return samples.every((s) => s.quality === "bad" && Boolean(s.reason));
        },
        10_000,
        "bad samples after the drop",
      );
      await eventually(() => !driver.connected, 5000, "the driver to notice the drop");
      await eventually(
        async () => {
          try {
            await driver.connect(ctx());
            return true;
          } catch {
            return false;
          }
        },
        10_000,
        "a reconnect",
      );
      const expected = await fixture.setValues(3);
      expectValues(await driver.read!(ctx()), expected);
      await driver.close();
    });

    it("runs under the driver runner: samples flow, a drop turns tags bad, then good again", async () => {
      const driver = fixture.driver();
      const seen: TagSample[] = [];
      const statuses: string[] = [];
      const runner = new DriverRunner({
        driver,
        log,
        onSamples: (s) => seen.push(...s),
        onStatus: (s) => statuses.push(s.status),
        reconnect: { minMs: 20, maxMs: 200 },
      });
      const expected = await fixture.setValues(4);
      runner.start();
      await eventually(() => seen.some((s) => s.quality === "good"), 10_000, "good samples");
      expectValues(
        seen.filter((s) => s.quality === "good").slice(0, Object.keys(expected).length),
        expected,
      );
      await fixture.dropServer();
      await eventually(() => seen.some((s) => s.quality === "bad"), 10_000, "bad samples");
      const afterBad = seen.length;
      await eventually(
        () => seen.slice(afterBad).some((s) => s.quality === "good"),
        15_000,
        "recovery",
      );
      await runner.stop();
      // issue 13 point 4: every bad sample says why as a code too, the runner's own included
      for (const s of seen.filter((x) => x.quality === "bad")) {
        expect(s.reasonCode, `${s.tag}: ${s.reason}`).toBeTruthy();
      }
      expect(statuses[0]).toBe("connected");
      expect(statuses).toContain("disconnected");
      expect(statuses.at(-1)).toBe("connected");
      expect(driver.connected).toBe(false);
    });
  });
}
