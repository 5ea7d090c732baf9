/**
 * The Modbus device and tag schema: the only source of the Modbus config types. Addresses,
 * types and byte orders are checked here; cross-tag checks (duplicates, overlaps, request
 * sizes) are in ../check-modbus.ts.
 */
import { z } from "zod";
import { parseModbusAddress } from "../modbus-address.ts";
import { BYTE_ORDERS, BYTE_ORDERS_64, MODBUS_TYPES } from "../modbus-types.ts";
import { duration } from "../units.ts";
import { assetContext, identifier, reconnectFields } from "./common.ts";
import { deviceRuleFields, tagRuleFields } from "./rules.ts";

const byteOrder = z
  .enum([...BYTE_ORDERS, ...BYTE_ORDERS_64])
  .describe(
    "Byte order of multi-register values: ABCD big-endian (default), CDAB word swap, BADC byte swap, DCBA both; 8-letter forms for 64-bit",
  );

const wordOrder = z
  .enum(["big", "little"])
  .describe("Shorthand for byte_order: big = ABCD, little = CDAB (low word first)");

export const modbusTagSchema = z
  .strictObject({
    name: identifier("a tag name").describe("Tag name, unique within the device"),
    address: z
      .string()
      .superRefine((text, ctx) => {
        try {
          parseModbusAddress(text, 0);
        } catch (err) {
          ctx.addIssue({ code: "custom", message: (err as Error).message });
        }
      })
      .describe("Modbus address: C5, DI12, IR10, HR100, HR100.3 (bit 3) or Modicon 40101"),
    type: z
      .enum(MODBUS_TYPES)
      .optional()
      .describe(
        "Value type; default bool for coils, discrete inputs and register bits, else uint16",
      ),
    unit_id: z
      .number()
      .int()
      .min(0)
      .max(255)
      .optional()
      .describe("Modbus unit id (slave id) for this tag; default the device's unit_id"),
    byte_order: byteOrder.optional(),
    word_order: wordOrder.optional(),
    length: z
      .number()
      .int()
      .min(1)
      .max(125)
      .optional()
      .describe("For strings: the length in registers (two characters each)"),
    string_byte_order: z
      .enum(["high_first", "low_first"])
      .optional()
      .describe(
        "For strings: which byte of a register holds the first character (default high_first)",
      ),
    scale: z.number().finite().optional().describe("Multiply the raw value by this (default 1)"),
    offset: z.number().finite().optional().describe("Add this after scaling (default 0)"),
    poll_interval: duration({
      min: 10,
      max: 86_400_000,
      description: "Poll this tag at its own interval instead of the device's",
    }).optional(),
    ...tagRuleFields,
    description: z.string().max(500).optional().describe("Free text for people"),
  })
  .superRefine((tag, ctx) => oneOrder(tag, ctx));

const serialSchema = z
  .strictObject({
    path: z.string().min(1).describe("Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/..."),
    baud_rate: z
      .number()
      .int()
      .min(300)
      .max(921_600)
      .default(19_200)
      .describe("Baud rate (default 19200)"),
    parity: z
      .enum(["none", "even", "odd"])
      .default("even")
      .describe("Parity (Modbus default even)"),
    data_bits: z
      .union([z.literal(7), z.literal(8)])
      .default(8)
      .describe("Data bits (default 8)"),
    stop_bits: z
      .union([z.literal(1), z.literal(2)])
      .default(1)
      .describe("Stop bits (default 1)"),
  })
  .describe("Serial line settings for Modbus RTU");

const commonModbus = {
  id: identifier("a device id").describe("Device id, unique in the gateway; part of topics"),
  ...assetContext,
  ...deviceRuleFields,
  unit_id: z
    .number()
    .int()
    .min(0)
    .max(255)
    .default(1)
    .describe("Default Modbus unit id (slave id) of the tags (default 1)"),
  address_base: z
    .union([z.literal(0), z.literal(1)])
    .default(0)
    .describe("Whether tag addresses count from 0 (as on the wire, default) or from 1"),
  byte_order: byteOrder.optional().describe("Default byte order of the tags (default ABCD)"),
  word_order: wordOrder.optional(),
  poll_interval: duration({
    min: 10,
    max: 86_400_000,
    description: "How often to read the tags (default 1s)",
  }).default(1000),
  request_timeout: duration({
    min: 10,
    max: 60_000,
    description: "How long to wait for each response (default 1s)",
  }).default(1000),
  max_in_flight: z
    .number()
    .int()
    .min(1)
    .max(16)
    .default(1)
    .describe("Requests in flight per connection (default 1: many PLCs serve one at a time)"),
  spread_requests: z
    .union([z.literal("auto"), z.boolean(), z.number().int().min(2).max(1000)])
    .default("auto")
    .describe(
      "Send the requests of a poll in steps over its interval instead of back to back at its start, so that the changes of a large poll reach the broker in smaller bursts: auto (default), a poll of more than 500 tags in steps of at most 500, steps at least 50 ms apart (1,000 tags every 100 ms: 2 steps; 500 or fewer, or more than 1,000 a step even so: back to back); false, back to back; true, each request at its own time; a number N, the requests in N steps (2: half of them at the start, half mid-interval). Values read together must share a request (contiguous registers)",
    ),
  io_thread: z
    .union([z.literal("auto"), z.boolean()])
    .default("auto")
    .describe(
      "Read this device on a thread of its own, so that its polls keep their schedule however busy the rest of the gateway is: true, false, or auto (default): a thread when the device's polls make 200 or more requests a second. A thread costs about 17 MB of memory",
    ),
  max_gap: z
    .number()
    .int()
    .min(0)
    .max(124)
    .default(4)
    .describe("Unused registers (or bits x16) a single request may span to merge two tags"),
  max_registers_per_request: z
    .number()
    .int()
    .min(1)
    .max(125)
    .default(125)
    .describe("Largest register read to send (125 by the protocol; some PLCs allow fewer)"),
  max_bits_per_request: z
    .number()
    .int()
    .min(1)
    .max(2000)
    .default(2000)
    .describe("Largest coil or discrete input read to send (2000 by the protocol)"),
  transient_retries: z
    .number()
    .int()
    .min(0)
    .max(5)
    .default(2)
    .describe(
      "Times one request is sent again within a poll after a transient answer: exception 5 (acknowledge), 6 (server device busy) or 11 (gateway target device failed to respond), and at most once after a timeout; 50 ms apart, doubling. Its tags go bad only when the last try fails (default 2; 0: never)",
    ),
  ...reconnectFields("a connection", 500),
  tags: z.array(modbusTagSchema).min(1).max(100_000).describe("The tags to read"),
};

const tcpFields = {
  host: z.string().min(1).describe("PLC or gateway host name or IP address"),
  port: z.number().int().min(1).max(65_535).default(502).describe("TCP port (default 502)"),
  connect_timeout: duration({
    min: 10,
    max: 60_000,
    description: "How long to wait for the TCP connection (default 3s)",
  }).default(3000),
};

/** byte_order and word_order say the same thing: a device or tag gives one of them. */
function oneOrder(value: { byte_order?: unknown; word_order?: unknown }, ctx: z.RefinementCtx) {
  if (value.byte_order !== undefined && value.word_order !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["word_order"],
      message: "give byte_order or word_order, not both",
    });
  }
}

export const modbusTcpDeviceSchema = z
  .strictObject({
    protocol: z.literal("modbus-tcp").describe("Modbus TCP (MBAP framing)"),
    ...commonModbus,
    ...tcpFields,
    transaction_ids: z
      .enum(["auto", "match", "ignore"])
      .default("auto")
      .describe(
        "How replies are matched to requests: auto (default) by MBAP transaction id, falling back with a warning to one request at a time matched by unit, function and byte count when the device answers with ids it was not sent (0, id + 1, bytes swapped); match: always by id (a reply under another id fails its request); ignore: always one request at a time, for devices known not to echo ids",
      ),
  })
  .superRefine(oneOrder)
  .describe("A Modbus TCP device");

export const modbusRtuOverTcpDeviceSchema = z
  .strictObject({
    protocol: z
      .literal("modbus-rtu-over-tcp")
      .describe("Modbus RTU frames over TCP, for serial-to-Ethernet converters"),
    ...commonModbus,
    ...tcpFields,
  })
  .superRefine(oneOrder)
  .describe("A Modbus RTU bus behind a serial-to-Ethernet converter");

export const modbusRtuDeviceSchema = z
  .strictObject({
    protocol: z.literal("modbus-rtu").describe("Modbus RTU over a serial line"),
    ...commonModbus,
    // the serial port's native binding crashes the process on a worker thread (node-serialport
    // #1938, #1981, #2250): a serial line is always read on the main thread
    io_thread: z
      .union([z.literal("auto"), z.literal(false)])
      .default("auto")
      .describe(
        "A serial line is always read on the gateway's main thread (the serial port library cannot run on a worker thread): auto (default) or false, which mean the same here",
      ),
    serial: serialSchema,
  })
  .superRefine(oneOrder)
  .describe("A Modbus RTU bus on a serial port");

export type ModbusTagConfig = z.output<typeof modbusTagSchema>;
export type ModbusTcpDeviceConfig = z.output<typeof modbusTcpDeviceSchema>;
export type ModbusRtuOverTcpDeviceConfig = z.output<typeof modbusRtuOverTcpDeviceSchema>;
export type ModbusRtuDeviceConfig = z.output<typeof modbusRtuDeviceSchema>;
export type ModbusDeviceConfig =
  | ModbusTcpDeviceConfig
  | ModbusRtuOverTcpDeviceConfig
  | ModbusRtuDeviceConfig;
