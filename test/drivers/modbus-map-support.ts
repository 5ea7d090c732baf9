/**
 * Helpers of the issue 13 Modbus tests (holes and request sizes, transient retries, tag maps
 * changed live): a device on the simulator, a driver context, a logger the test can read.
 */
import { Writable } from "node:stream";
import type { ModbusSimulator } from "../../simulators/modbus/index.ts";
import type { ModbusDeviceConfig } from "../../src/config/schema/modbus.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { ModbusDriver } from "../../src/drivers/modbus/driver.ts";
import type { DriverContext, TagSample } from "../../src/drivers/types.ts";
import { createLogger, type Logger } from "../../src/lib/logger.ts";

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export const WARN = 40;

/** A logger whose lines the test can read (debug and up). */
export function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = createLogger({
    level: "debug",
    destination: new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split("\n")) if (line) lines.push(JSON.parse(line));
        done();
      },
    }),
  });
  return { log, lines };
}

export function context(log: Logger): DriverContext {
  return { signal: new AbortController().signal, log };
}

export function tcpDevice(
  sim: ModbusSimulator,
  fields: Record<string, unknown>,
): ModbusDeviceConfig {
  return deviceSchema.parse({
    id: "plc",
    protocol: "modbus-tcp",
    host: "127.0.0.1",
    port: sim.port,
    request_timeout: "1s",
    ...fields,
  }) as ModbusDeviceConfig;
}

export function driverFor(sim: ModbusSimulator, fields: Record<string, unknown>): ModbusDriver {
  return new ModbusDriver(tcpDevice(sim, fields));
}

/** The samples by tag name. */
export function byTag(samples: readonly TagSample[]): Record<string, TagSample> {
  return Object.fromEntries(samples.map((s) => [s.tag, s]));
}

/** The requests the simulator saw, as "fc:start+count". */
export function seen(sim: ModbusSimulator): string[] {
  return sim.requests.map((r) => `${r.functionCode}:${r.address}+${r.quantity}`);
}
