/** The whole gateway config, version 1: composed from one schema per part. */
import { z } from "zod";
import { gatewaySchema, httpSchema, journalSchema, mqttSchema } from "./gateway.ts";
import {
  modbusRtuDeviceSchema,
  modbusRtuOverTcpDeviceSchema,
  modbusTcpDeviceSchema,
} from "./modbus.ts";
import { opcuaDeviceSchema } from "./opcua.ts";
import { overloadSchema } from "./overload.ts";

export const deviceSchema = z.discriminatedUnion("protocol", [
  modbusTcpDeviceSchema,
  modbusRtuOverTcpDeviceSchema,
  modbusRtuDeviceSchema,
  opcuaDeviceSchema,
]);

export const PROTOCOLS = deviceSchema.options.map((o) => o.shape.protocol.value);

export const configSchema = z
  .strictObject({
    version: z.literal(1).describe("Config format version; this is version 1"),
    gateway: gatewaySchema,
    mqtt: mqttSchema.optional(),
    journal: journalSchema.default(journalSchema.parse({})),
    http: httpSchema.default(httpSchema.parse({})),
    overload: overloadSchema.default(overloadSchema.parse({})),
    devices: z
      .array(deviceSchema, {
        error: (issue) =>
          issue.code === "invalid_type" && typeof issue.input === "object"
            ? "devices is a list: start each device with '- ' (e.g. - id: press-1)"
            : undefined,
      })
      .max(1000)
      .default([])
      .describe("The PLCs and servers to read"),
  })
  .describe("plc2mqtt gateway configuration");

export type GatewayConfig = z.output<typeof configSchema>;
export type DeviceConfig = z.output<typeof deviceSchema>;
export type Protocol = DeviceConfig["protocol"];
