/**
 * A Modbus device with one tag of every kind, served by the bundled simulator, for the driver
 * contract suite and other driver tests.
 */

import type { ModbusSimulator } from "../../simulators/modbus/index.ts";
import { type DeviceConfig, deviceSchema } from "../../src/config/schema/root.ts";
import type { CodecSpec } from "../../src/drivers/modbus/codec.ts";
import type { TagValue } from "../../src/drivers/types.ts";

export const TAGS = [
  { name: "state", address: "HR0", type: "uint16" },
  { name: "level", address: "HR1", type: "int16" },
  { name: "temperature", address: "HR2", type: "float32", byte_order: "CDAB" },
  { name: "count", address: "HR4", type: "uint32" },
  { name: "energy", address: "HR8", type: "int64", byte_order: "DCBA" },
  { name: "pressure", address: "HR12", type: "float64", byte_order: "BADC" },
  { name: "batch", address: "HR20", type: "string", length: 5 },
  { name: "alarm", address: "HR30.3", type: "bool" },
  { name: "speed", address: "HR31", type: "uint16", scale: 0.1, offset: -10 },
  { name: "motor_on", address: "C5", type: "bool" },
  { name: "door_closed", address: "DI7", type: "bool" },
  { name: "flow", address: "IR10", type: "float32", unit_id: 2 },
] as const;

export function modbusDevice(fields: Record<string, unknown>): DeviceConfig {
  return deviceSchema.parse({
    id: "plc-1",
    unit_id: 1,
    tags: TAGS,
    request_timeout: "500ms",
    ...fields,
  });
}

const spec = (
  type: CodecSpec["type"],
  byteOrder: CodecSpec["byteOrder"] = "ABCD",
  extra: Partial<CodecSpec> = {},
): CodecSpec => ({
  type,
  byteOrder,
  ...extra,
});

/** Known values for round `round`, written to the simulator; returns what each tag must read. */
export function setKnownValues(sim: ModbusSimulator, round: number): Record<string, TagValue> {
  const values = {
    state: round % 3,
    level: -100 * round,
    temperature: 20.5 + round,
    count: 70_000 + round,
    energy: -(2 ** 40) - round,
    pressure: 1.25e5 + round / 8,
    batch: `B-${round}`,
    alarm: round % 2 === 1,
    speed: 100 + round,
    motor_on: round % 2 === 0,
    door_closed: round % 2 === 1,
    flow: 0.5 * round,
  };
  sim.setValue(1, "HR0", values.state, spec("uint16"));
  sim.setValue(1, "HR1", values.level, spec("int16"));
  sim.setValue(1, "HR2", values.temperature, spec("float32", "CDAB"));
  sim.setValue(1, "HR4", values.count, spec("uint32"));
  sim.setValue(1, "HR8", values.energy, spec("int64", "DCBA"));
  sim.setValue(1, "HR12", values.pressure, spec("float64", "BADC"));
  sim.setValue(1, "HR20", values.batch, spec("string", "ABCD", { length: 5 }));
  sim.setBit(1, "HR30.3", values.alarm);
  sim.setValue(1, "HR31", values.speed, spec("uint16", "ABCD", { scale: 0.1, offset: -10 }));
  sim.setBit(1, "C5", values.motor_on);
  sim.setBit(1, "DI7", values.door_closed);
  sim.setValue(2, "IR10", values.flow, spec("float32"));
  return values;
}
