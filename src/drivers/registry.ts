/**
 * The one file that lists the drivers: a device's protocol picks its driver. Creating a driver
 * does no I/O; it validates and precomputes (read plans, codecs). The OPC UA driver needs the
 * gateway's data_dir (its PKI lives in <data_dir>/pki); node-opcua itself is loaded only when
 * an OPC UA device connects.
 */
import type { DeviceConfig } from "../config/schema/root.ts";
import { GatewayError } from "../lib/errors.ts";
import { ModbusDriver } from "./modbus/driver.ts";
import { ThreadedModbusDriver } from "./modbus/io-thread.ts";
import { OpcuaDriver } from "./opcua/driver.ts";
import type { Driver } from "./types.ts";

export interface DriverCreation {
  /** gateway.data_dir. */
  dataDir: string;
  /** The config file path, when known: named in operator hints (`pki trust -c ...`). */
  configPath?: string;
  /**
   * false: a Modbus device is read on the calling thread even when it would get an I/O thread
   * of its own (modbus/thread-choice.ts): one-off reads such as `plc2mqtt read`.
   */
  ioThread?: boolean;
}

export function createDriver(device: DeviceConfig, creation?: DriverCreation): Driver {
  switch (device.protocol) {
    case "modbus-tcp":
    case "modbus-rtu-over-tcp":
    case "modbus-rtu": {
      const driver = new ModbusDriver(device);
      if (creation?.ioThread === false || !driver.wantsIoThread) return driver;
      return new ThreadedModbusDriver(device);
    }
    case "opcua":
      if (creation === undefined) {
        throw new GatewayError("USAGE", `device ${device.id}: an OPC UA driver needs the data_dir`);
      }
      return new OpcuaDriver(device, creation);
  }
}
