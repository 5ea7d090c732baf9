/**
 * Commissioning reads (`plc2mqtt read`): connect one configured device, read once, close.
 * Nothing is journaled or published; the samples go back to the caller to print.
 */
import { parseModbusAddress } from "../config/modbus-address.ts";
import type { DeviceConfig, GatewayConfig } from "../config/schema/root.ts";
import { ModbusDriver } from "../drivers/modbus/driver.ts";
import { createDriver } from "../drivers/registry.ts";
import type { Driver, TagSample } from "../drivers/types.ts";
import { GatewayError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";

export function findDevice(config: GatewayConfig, deviceId: string): DeviceConfig {
  const device = config.devices.find((d) => d.id === deviceId);
  if (!device) {
    const known = config.devices.map((d) => d.id).join(", ") || "none";
    throw new GatewayError(
      "DEVICE_UNKNOWN",
      `no device ${deviceId} in the config (devices: ${known})`,
    );
  }
  return device;
}

async function withConnected<T>(
  driver: Driver,
  ctx: { signal: AbortSignal; log: Logger },
  work: () => Promise<T>,
): Promise<T> {
  try {
    await driver.connect(ctx);
    return await work();
  } finally {
    await driver.close();
  }
}

/** Reads the named tags (all when none are named) of one device once. */
export async function readTagsOnce(
  config: GatewayConfig,
  deviceId: string,
  tagNames: readonly string[],
  ctx: {
    signal: AbortSignal;
    log: Logger;
    configPath?: string;
    /** Modbus: the read plan after the read, with what the device's map taught (issue 13.9). */
    onPlan?: (lines: readonly string[]) => void;
  },
): Promise<TagSample[]> {
  const device = findDevice(config, deviceId);
  const known = new Set(device.tags.map((t) => t.name));
  const unknown = tagNames.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new GatewayError("TAG_UNKNOWN", `device ${deviceId} has no tag ${unknown.join(", ")}`);
  }
  const driver = createDriver(device, {
    dataDir: config.gateway.data_dir,
    // one read, with the registers behind each value: on this thread
    ioThread: false,
    ...(ctx.configPath === undefined ? {} : { configPath: ctx.configPath }),
  });
  const group = tagNames.length === 0 ? undefined : { interval: 0, tags: tagNames };
  return withConnected(driver, ctx, async () => {
    const samples = await driver.read!(ctx, group);
    if (ctx.onPlan && driver instanceof ModbusDriver) ctx.onPlan(driver.describePlan());
    return samples;
  });
}

export interface RawRange {
  /** The address as the user wrote it, counted from the device's address_base. */
  address: string;
  count: number;
  unitId?: number;
}

/** Reads a raw register range of a Modbus device, for `read --decode`. */
export async function readRawOnce(
  config: GatewayConfig,
  deviceId: string,
  range: RawRange,
  ctx: { signal: AbortSignal; log: Logger },
): Promise<number[]> {
  const device = findDevice(config, deviceId);
  if (
    device.protocol !== "modbus-tcp" &&
    device.protocol !== "modbus-rtu-over-tcp" &&
    device.protocol !== "modbus-rtu"
  ) {
    throw new GatewayError("USAGE", "--decode reads raw Modbus registers: pick a Modbus device");
  }
  let address: ReturnType<typeof parseModbusAddress>;
  try {
    address = parseModbusAddress(range.address, device.address_base);
  } catch (err) {
    throw new GatewayError("USAGE", (err as Error).message);
  }
  if (address.table !== "holding_register" && address.table !== "input_register") {
    throw new GatewayError("USAGE", "--decode interprets registers: give an HR or IR address");
  }
  const driver = new ModbusDriver(device);
  const request = {
    unitId: range.unitId ?? device.unit_id,
    table: address.table,
    start: address.offset,
    count: range.count,
  };
  return withConnected(driver, ctx, () => driver.readRaw(request, ctx.signal));
}
