/**
 * Opens the link to a Modbus device, by framing, on a byte stream the gateway reads itself
 * (byte-stream.ts): Modbus TCP with replies matched by transaction id (mbap-link.ts), or a line
 * without ids, one request at a time behind the line guard (line-guard.ts): RTU frames on a
 * serial line or over TCP to a serial-to-Ethernet converter, and Modbus TCP to a device that
 * does not echo transaction ids.
 *
 * Invariants every link keeps (see each file for how):
 * - Every request has its own timeout and settles exactly once: with the words or bits asked
 *   for, or a GatewayError whose code says why (MODBUS_TIMEOUT, MODBUS_EXCEPTION,
 *   MODBUS_MALFORMED, MODBUS_DISCONNECTED, MODBUS_TRANSACTION_ID).
 * - A reply is accepted only as the answer to the request it belongs to: by its transaction id
 *   on Modbus TCP; on a line without ids by unit, function code, byte count and frame check,
 *   arriving alone, on a line drained after any doubt. Anything else fails the request with the
 *   reason: a value is never taken from another request's reply. Where a line cannot rule it
 *   out for readings already handed out, it says so (onDoubt).
 * - When the byte stream cannot be trusted any more, the link drops it. Modbus TCP with ids
 *   opens a fresh connection at once (a fault costs the requests it hit, not the runner's
 *   reconnect backoff; mbap-link.ts says when); otherwise the link closes itself and the
 *   runner reconnects.
 */
import type { ModbusDeviceConfig } from "../../config/schema/modbus.ts";
import type { Logger } from "../../lib/logger.ts";
import { openByteStream } from "./byte-stream.ts";
import { LineLink, lineTiming } from "./line-guard.ts";
import { mbapLink, type TransactionIdMode } from "./mbap-link.ts";
import type { ModbusLink } from "./request.ts";

export type { TransactionIdMode } from "./mbap-link.ts";
export type { DoubtListener, ModbusLink, ReadRequest } from "./request.ts";
export { describeRequest, exceptionName } from "./request.ts";

export interface OpenLinkOptions {
  log: Logger;
  signal?: AbortSignal;
  /** Modbus TCP: overrides the device's transaction_ids (what the driver learned). */
  transactionIds?: TransactionIdMode;
  /** Modbus TCP, auto: the device was found not to echo transaction ids. */
  onNoEcho?: (detail: string) => void;
}

/** Opens a link; throws MODBUS_CONNECT with the cause when the device cannot be reached. */
export async function openLink(
  device: ModbusDeviceConfig,
  options: OpenLinkOptions,
): Promise<ModbusLink> {
  const stream = await openByteStream(device, options.signal);
  if (device.protocol === "modbus-tcp") {
    return mbapLink(stream, {
      mode: options.transactionIds ?? device.transaction_ids,
      timing: lineTiming(device.request_timeout),
      log: options.log,
      reopen: (signal) =>
        openByteStream(device, options.signal ? AbortSignal.any([options.signal, signal]) : signal),
      ...(options.onNoEcho ? { onNoEcho: options.onNoEcho } : {}),
    });
  }
  const baud = device.protocol === "modbus-rtu" ? device.serial.baud_rate : undefined;
  return new LineLink(stream, lineTiming(device.request_timeout, baud));
}
