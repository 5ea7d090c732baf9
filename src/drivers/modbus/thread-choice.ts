/**
 * Whether a Modbus device is read on an I/O thread of its own (io-thread.ts), by its
 * `io_thread` setting: true, false, or auto: when its polls make IO_THREAD_REQUESTS_PER_S or more
 * requests a second. On the gateway's main thread a request waits for the main thread's turn
 * (a group commit, a burst of publishes) before the next one goes out; with a thread the
 * device's requests follow each other at the device's pace. A thread costs a V8 isolate (about
 * 17 MB), so small devices stay on the main thread, where a turn is rarely what they wait for.
 */
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";

export const IO_THREAD_REQUESTS_PER_S = 200;

/** Requests a second that poll groups of `requests` planned reads each make. */
export function requestsPerSecond(
  groups: readonly { interval: number; plan: readonly unknown[] }[],
): number {
  return groups.reduce((sum, g) => sum + (g.plan.length * 1000) / g.interval, 0);
}

export function wantsIoThread(device: ModbusDeviceConfig, perSecond: number): boolean {
  // never a serial line: its native binding crashes the process on a worker thread
  // (node-serialport #1938, #1981, #2250; the config refuses io_thread: true for one)
  if (device.protocol === "modbus-rtu") return false;
  const setting = device.io_thread ?? "auto";
  if (setting !== "auto") return setting;
  return perSecond >= IO_THREAD_REQUESTS_PER_S;
}
