/**
 * Opens the link to a Modbus device, by framing: Modbus TCP through modbus-serial
 * (mbap-link.ts), or RTU frames, on a serial line or over TCP to a serial-to-Ethernet
 * converter, on a byte stream the gateway reads itself (rtu-port.ts) behind the line guard
 * (line-guard.ts).
 *
 * Invariants every link keeps (see each file for how):
 * - Every request has its own timeout and settles exactly once: with the words or bits asked
 *   for, or a GatewayError whose code says why (MODBUS_TIMEOUT, MODBUS_EXCEPTION,
 *   MODBUS_MALFORMED, MODBUS_DISCONNECTED).
 * - A reply is accepted only as the answer to the request it belongs to: by its transaction id
 *   on Modbus TCP; on RTU, which has none, by unit, function code, byte count and CRC, arriving
 *   alone, on a line drained after any doubt. Anything else fails the request with the reason:
 *   a value is never taken from another request's reply.
 * - When the byte stream cannot be trusted any more, the link closes itself and the runner
 *   reconnects.
 */
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";
import { lineTiming, RtuLink } from "./line-guard.ts";
import { openMbapLink } from "./mbap-link.ts";
import type { ModbusLink } from "./request.ts";
import { openRtuStream } from "./rtu-port.ts";

export type { ModbusLink, ReadRequest } from "./request.ts";
export { describeRequest, exceptionName } from "./request.ts";

/** Opens a link; throws MODBUS_CONNECT with the cause when the device cannot be reached. */
export async function openLink(
  device: ModbusDeviceConfig,
  signal?: AbortSignal,
): Promise<ModbusLink> {
  if (device.protocol === "modbus-tcp") return openMbapLink(device, signal);
  const stream = await openRtuStream(device, signal);
  const baud = device.protocol === "modbus-rtu" ? device.serial.baud_rate : undefined;
  return new RtuLink(stream, lineTiming(device.request_timeout, baud));
}
