/**
 * A Modbus device on an I/O thread of its own (src/drivers/modbus/io-thread.ts): its polls keep
 * their schedule while the gateway's main thread is busy, which is the point of the thread;
 * and `io_thread: auto` gives a thread to the devices whose polls make 200+ requests a second.
 *
 * The server is the bench's Modbus load (the bundled simulator in a process of its own, so
 * that blocking this process's main thread does not stop it): 250 holding registers that all
 * change every 50 ms, each value naming its tick.
 */
import { getEventListeners } from "node:events";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { DriverRunner } from "../../src/app/driver-runner.ts";
import type { ModbusDeviceConfig } from "../../src/config/schema/modbus.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { ModbusDriver } from "../../src/drivers/modbus/driver.ts";
import { ThreadedModbusDriver } from "../../src/drivers/modbus/io-thread.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { isGatewayError } from "../../src/lib/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { type Helper, startHelper } from "../bench/e2e/child.ts";
import { eventually } from "../support/resources.ts";
import { byTag, capturingLogger, context, seen, tcpDevice } from "./modbus-map-support.ts";

const TWO_TAGS = [
  { name: "speed", address: "HR0" },
  { name: "level", address: "HR1" },
];
const REGISTERS = 250;
const POLL_MS = 50;
const BLOCK_MS = 1000;

function device(fields: Record<string, unknown>, registers = REGISTERS): ModbusDeviceConfig {
  return deviceSchema.parse({
    id: "line1",
    protocol: "modbus-tcp",
    host: "127.0.0.1",
    poll_interval: `${POLL_MS}ms`,
    tags: Array.from({ length: registers }, (_, a) => ({ name: `r${a}`, address: `HR${a}` })),
    ...fields,
  }) as ModbusDeviceConfig;
}

/** Blocks this thread (as a long group commit would), busy, for `ms`. */
function block(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

describe("a Modbus device on its own I/O thread", () => {
  let load: Helper<{ port: number; pid: number }>;

  beforeAll(async () => {
    load = await startHelper("modbus-load", [
      "--registers",
      String(REGISTERS),
      "--period",
      String(POLL_MS),
    ]);
  }, 60_000);

  afterAll(async () => {
    await load?.stop();
  });

  /**
   * Polls taken while this thread was blocked for BLOCK_MS: readTime is stamped when a reply
   * is decoded, so a poll read during the block has its readTime inside it.
   */
  async function pollsDuringBlock(
    ioThread: boolean,
  ): Promise<{ during: TagSample[]; skipped: number }> {
    const driver = createDriver(device({ port: load.ready.port, io_thread: ioThread }));
    expect(driver instanceof ThreadedModbusDriver).toBe(ioThread);
    const r0: TagSample[] = [];
    let skipped = 0;
    const runner = new DriverRunner({
      driver,
      log: silentLogger(),
      onPoll: (report) => {
        skipped += report.skipped ?? 0;
      },
      onSamples: (samples) => {
        for (const s of samples) if (s.tag === "r0") r0.push(s);
      },
      reconnect: { minMs: 20, maxMs: 200 },
    });
    runner.start();
    try {
      await eventually(() => r0.some((s) => s.quality === "good"), 10_000, "first good poll");
      const from = Date.now();
      block(BLOCK_MS);
      const to = Date.now();
      await eventually(() => r0.some((s) => s.readTime > to), 10_000, "a poll after the block");
      // strictly inside: a reply decoded in the millisecond the block began or ended was not
      // read during it (on the main thread nothing can be)
      return { during: r0.filter((s) => s.readTime > from && s.readTime < to), skipped };
    } finally {
      await runner.stop();
    }
  }

  it("keeps polling on schedule while the main thread is blocked, every value good and in order", async () => {
    const { during, skipped } = await pollsDuringBlock(true);
    // 20 polls are due in the block; the thread keeps up to MAX_POLLS_AHEAD (10) for the
    // runner. At least 5, so that a loaded machine that slows the thread too does not fail it
    expect(during.length).toBeGreaterThanOrEqual(5);
    expect(during.every((s) => s.quality === "good")).toBe(true);
    // in the order read, each value (the server's tick) at or after the one before
    for (let i = 1; i < during.length; i++) {
      expect(during[i]!.readTime).toBeGreaterThanOrEqual(during[i - 1]!.readTime);
      expect(during[i]!.value as number).toBeGreaterThanOrEqual(during[i - 1]!.value as number);
    }
    expect(during.at(-1)!.value).not.toBe(during[0]!.value);
    // the 20 poll times of the block: each read, or counted as skipped (/metrics)
    expect(during.length + skipped).toBeGreaterThanOrEqual(BLOCK_MS / POLL_MS - 2);
  }, 60_000);

  it("on the main thread (io_thread: false), polls wait for the block, counted as skipped", async () => {
    const { during, skipped } = await pollsDuringBlock(false);
    expect(during).toEqual([]);
    expect(skipped).toBeGreaterThanOrEqual(BLOCK_MS / POLL_MS - 2);
  }, 60_000);

  it("auto gives a thread to a device of 200+ requests a second, and only to it", () => {
    const big = device({ port: 1, poll_interval: "100ms" }, 2500); // 20 requests per 100 ms
    const small = device({ port: 1, poll_interval: "100ms" }, 2000); // 16 per 100 ms
    expect(createDriver(big)).toBeInstanceOf(ThreadedModbusDriver);
    expect(createDriver(small)).toBeInstanceOf(ModbusDriver);
    expect(createDriver({ ...small, io_thread: true } as ModbusDeviceConfig)).toBeInstanceOf(
      ThreadedModbusDriver,
    );
    expect(createDriver({ ...big, io_thread: false })).toBeInstanceOf(ModbusDriver);
    // one-off reads (plc2mqtt read) stay on the calling thread
    expect(createDriver(big, { dataDir: "/nonexistent", ioThread: false })).toBeInstanceOf(
      ModbusDriver,
    );
  });

  it("never puts a serial line on a thread: its native binding crashes the process there", () => {
    const serial = (fields: Record<string, unknown>) =>
      deviceSchema.safeParse({
        id: "bus",
        protocol: "modbus-rtu",
        serial: { path: "/dev/ttyUSB0", baud_rate: 115200 },
        poll_interval: "10ms",
        tags: Array.from({ length: 5000 }, (_, a) => ({ name: `r${a}`, address: `HR${a}` })),
        ...fields,
      });
    const refused = serial({ io_thread: true });
    expect(refused.success).toBe(false);
    expect(JSON.stringify(refused.error?.issues)).toContain("io_thread");
    // 41 requests every 10 ms: far past the threshold, still on the main thread
    const busy = serial({});
    expect(busy.success).toBe(true);
    expect(createDriver(busy.data!)).toBeInstanceOf(ModbusDriver);
  });

  it("reports a refused connection with its code, from the thread", async () => {
    const driver = createDriver(device({ port: 1, io_thread: true, connect_timeout: "500ms" }));
    const ctx = { signal: new AbortController().signal, log: silentLogger() };
    const err = await driver.connect(ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    await driver.close();
    expect(driver).toBeInstanceOf(ThreadedModbusDriver);
    expect(isGatewayError(err, "MODBUS_CONNECT"), String(err)).toBe(true);
    // why, as on the main thread: the cause crosses too
    expect(String((err as Error).cause)).toMatch(/ECONNREFUSED/);
    expect(driver.connected).toBe(false);
  });

  it("a thread that fails to start fails the connect, and leaves no listener behind", async () => {
    const failing = new URL("data:text/javascript,throw new Error('no thread here')");
    const driver = new ThreadedModbusDriver(device({ port: 1, io_thread: true }), {
      entry: failing,
    });
    const stop = new AbortController();
    const ctx = { signal: stop.signal, log: silentLogger() };
    for (let attempt = 0; attempt < 12; attempt++) {
      const err = await driver.connect(ctx).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isGatewayError(err, "MODBUS_DISCONNECTED"), String(err)).toBe(true);
      expect(driver.connected).toBe(false);
    }
    // each connect listened to the runner's signal; a dead thread must not keep that
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(0);
    await driver.close();
  });
});

describe("a Modbus device on its own I/O thread, against the in-process simulator", () => {
  let sim: ModbusSimulator | undefined;
  let driver: ThreadedModbusDriver | undefined;
  afterEach(async () => {
    await driver?.close();
    await sim?.close();
    driver = undefined;
    sim = undefined;
  });

  async function connected(log = capturingLogger()) {
    sim = await startModbusSimulator({ port: 0 });
    sim.setRegisters(1, "HR0", [5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 10]);
    const device = tcpDevice(sim, { tags: TWO_TAGS, io_thread: true });
    driver = createDriver(device) as ThreadedModbusDriver;
    const ctx = context(log.log);
    await driver.connect(ctx);
    return { ctx, device, lines: log.lines };
  }

  it("applies a new tag map on the thread's live connection, and polls the new groups", async () => {
    const { ctx } = await connected();
    const next = tcpDevice(sim!, {
      tags: [...TWO_TAGS, { name: "flow", address: "HR10" }],
      io_thread: true,
    });
    expect(await driver!.updateTags(next, ctx)).toBe(true);
    const [group] = driver!.pollGroups();
    expect(group!.tags).toEqual(["speed", "level", "flow"]);
    sim!.clearRequests();
    const poll = await driver!.nextPoll(ctx, group!);
    expect(byTag(poll.samples).flow).toMatchObject({ quality: "good", value: 10 });
    expect(seen(sim!).slice(0, 2)).toEqual(["3:0+2", "3:10+1"]);
    expect(sim!.connections).toBe(1);
    // off the thread is a new driver: the runner replaces this one
    expect(await driver!.updateTags({ ...next, io_thread: false }, ctx)).toBe(false);
    expect(driver!.pollGroups()[0]!.tags).toEqual(["speed", "level", "flow"]);
  });

  it("logs what the thread's driver logs on the device's logger, and follows its connection", async () => {
    const { ctx, lines } = await connected();
    // the thread's connect can resolve before this thread's simulator has taken the connection:
    // a drop then finds nothing to drop (seen under load)
    await eventually(() => sim!.connections === 1, 5000, "the simulator's side of the connection");
    sim!.dropConnections();
    const [group] = driver!.pollGroups();
    await expect(driver!.nextPoll(ctx, group!)).resolves.toBeDefined();
    await eventually(
      () => lines.some((l) => l.msg === "Modbus link closed" && l.level === 40),
      5000,
      "the thread's warning",
    );
    expect(driver!.connected).toBe(false);
  });
});
