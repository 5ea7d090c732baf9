/**
 * Modbus tags as the driver and the checks see them: address parsed against the device's
 * address base, type and byte order defaulted, register span known. Pure; throws on a tag
 * the schema has not validated.
 */
import { isRegisterTable, type ModbusAddress, parseModbusAddress } from "./modbus-address.ts";
import {
  type ByteOrder,
  canonicalByteOrder,
  type ModbusType,
  REGISTER_WIDTH,
} from "./modbus-types.ts";
import type { ModbusDeviceConfig, ModbusTagConfig } from "./schema/modbus.ts";

export interface ResolvedModbusTag {
  name: string;
  unitId: number;
  address: ModbusAddress;
  type: ModbusType;
  byteOrder: ByteOrder;
  /** Registers (or bits, for coils and discrete inputs) the value spans on the wire. */
  span: number;
  /** Strings only: length in registers and where the first character sits. */
  length?: number;
  stringByteOrder: "high_first" | "low_first";
  scale: number;
  offset: number;
  pollInterval: number;
}

export type ModbusDeviceShape = Pick<
  ModbusDeviceConfig,
  "unit_id" | "address_base" | "byte_order" | "word_order" | "poll_interval"
>;

function orderOf(
  byteOrder: ModbusTagConfig["byte_order"],
  wordOrder: ModbusTagConfig["word_order"],
): ByteOrder | undefined {
  if (byteOrder !== undefined) return canonicalByteOrder(byteOrder);
  if (wordOrder !== undefined) return wordOrder === "little" ? "CDAB" : "ABCD";
  return undefined;
}

export function resolveModbusTag(
  device: ModbusDeviceShape,
  tag: ModbusTagConfig,
): ResolvedModbusTag {
  const address = parseModbusAddress(tag.address, device.address_base);
  const bitAddressed = !isRegisterTable(address.table) || address.bit !== undefined;
  const type = tag.type ?? (bitAddressed ? "bool" : "uint16");
  const span = type === "string" ? (tag.length ?? 0) : bitAddressed ? 1 : REGISTER_WIDTH[type];
  return {
    name: tag.name,
    unitId: tag.unit_id ?? device.unit_id,
    address,
    type,
    byteOrder:
      orderOf(tag.byte_order, tag.word_order) ??
      orderOf(device.byte_order, device.word_order) ??
      "ABCD",
    span,
    ...(tag.length === undefined ? {} : { length: tag.length }),
    stringByteOrder: tag.string_byte_order ?? "high_first",
    scale: tag.scale ?? 1,
    offset: tag.offset ?? 0,
    pollInterval: tag.poll_interval ?? device.poll_interval,
  };
}

/**
 * Why a tag cannot be read as configured, or undefined when it can. Cross-tag problems
 * (duplicates, overlaps) are found by the config checks, not here.
 */
export function impossibleTag(tag: ResolvedModbusTag): string | undefined {
  const { address, type } = tag;
  if (!isRegisterTable(address.table) && type !== "bool") {
    return `a ${address.table.replace("_", " ")} holds one bit: type must be bool, not ${type}`;
  }
  if (isRegisterTable(address.table) && address.bit === undefined && type === "bool") {
    return "a bool in a register needs a bit number, e.g. HR100.3";
  }
  if (address.bit !== undefined && type !== "bool") {
    return `a register bit is a bool, not ${type}`;
  }
  if (type === "string" && tag.length === undefined) {
    return "a string tag needs length (in registers, two characters each)";
  }
  if (type !== "string" && tag.length !== undefined) return "length applies to strings only";
  if (address.offset + tag.span > 65_536) {
    return `spans ${tag.span} registers from ${address.offset}, past the last Modbus address 65535`;
  }
  return undefined;
}
