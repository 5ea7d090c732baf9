/**
 * Issue 11.2: the line guard's window after a reply was a timer, and Node runs expired timers
 * before it reads sockets. With the loop held busy past the window right after a reply was
 * read, the timer fired before bytes that had already arrived were read, so even a copy sent
 * right after the reply passed as silence (and would have answered the next request). The
 * device runs in a worker thread, so it sends on time while this thread's loop is held busy.
 */
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModbusDeviceConfig } from "../../src/config/schema/modbus.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { type ByteStream, openByteStream } from "../../src/drivers/modbus/byte-stream.ts";
import { LineLink, lineTiming } from "../../src/drivers/modbus/line-guard.ts";

const HR0 = { unitId: 1, table: "holding_register" as const, start: 0, count: 1 };

/** The stream, with the loop held busy for `ms` right after the next chunk is handed over. */
function busyAfterNextChunk(stream: ByteStream) {
  let holdMs = 0;
  const wrapped: ByteStream = {
    peer: stream.peer,
    get isOpen() {
      return stream.isOpen;
    },
    write: (bytes) => stream.write(bytes),
    onData: (listener) =>
      stream.onData((chunk) => {
        listener(chunk);
        const ms = holdMs;
        holdMs = 0;
        const until = performance.now() + ms;
        while (performance.now() < until) {
          // the loop is busy: nothing is read, no timer runs
        }
      }),
    onClose: (listener) => stream.onClose(listener),
    close: () => stream.close(),
  };
  return { stream: wrapped, hold: (ms: number) => (holdMs = ms) };
}

describe("Modbus line guard with the event loop held busy", () => {
  let worker: Worker;
  let port: number;

  beforeAll(async () => {
    worker = new Worker(new URL("./fixtures/modbus-sim-worker.ts", import.meta.url), {
      workerData: { framing: "rtu-over-tcp" },
    });
    [{ port }] = (await once(worker, "message")) as [{ port: number }];
  });
  afterAll(async () => {
    worker.postMessage("close");
    await once(worker, "exit");
  });

  it("a copy that came inside the window, unread while the loop was busy, is never silence", async () => {
    const device = deviceSchema.parse({
      id: "busy",
      protocol: "modbus-rtu-over-tcp",
      host: "127.0.0.1",
      port,
      request_timeout: "300ms",
      tags: [{ name: "a", address: "HR0" }],
    }) as ModbusDeviceConfig;
    const raw = await openByteStream(device);
    const busy = busyAfterNextChunk(raw);
    const link = new LineLink(busy.stream, lineTiming(300));
    try {
      // a clean exchange first (the new line's drain, and the device's turnaround: the
      // window stays a few ms, well inside the 60 ms the loop is held below)
      expect(await link.read(HR0, 300)).toEqual([111]);
      worker.postMessage({ duplicate: 5 });
      await once(worker, "message");
      // the reply is read, then the loop is busy for three guard windows (at least 60 ms; a
      // loaded machine's first turnaround widens the window): the copy, 5 ms after the
      // reply, waits unread in the socket while the window expires
      busy.hold(Math.max(60, 3 * link.guardMs));
      await expect(link.read(HR0, 300)).rejects.toMatchObject({
        code: "MODBUS_MALFORMED",
        message: expect.stringMatching(/unexpected bytes after the reply/),
      });
    } finally {
      await link.close();
    }
  });
});
