/**
 * The one file that lists the drivers: a device's protocol picks its driver. Creating a driver
 * does no I/O; it validates and precomputes (read plans, codecs).
 */
import type { DeviceConfig } from "../config/schema/root.ts";
import { GatewayError } from "../lib/errors.ts";
import { ModbusDriver } from "./modbus/driver.ts";
import type { Driver } from "./types.ts";

export function createDriver(device: DeviceConfig): Driver {
  switch (device.protocol) {
    case "modbus-tcp":
    case "modbus-rtu-over-tcp":
    case "modbus-rtu":
      return new ModbusDriver(device);
    case "opcua":
      throw new GatewayError("USAGE", `device ${device.id}: the OPC UA driver is not built yet`);
  }
}
