/** The Modbus PLC simulator, as a library: start on port 0, set values, inject faults, close. */
export { startModbusSimulator } from "./server.ts";
export type {
  AppliedFault,
  CodecSpec,
  FaultControl,
  FaultMatch,
  Framing,
  InjectedReply,
  MalformedKind,
  Millis,
  ModbusSimulator,
  ModbusSimulatorOptions,
  RequestRecord,
  TagValue,
  TransactionIdQuirk,
  Transport,
} from "./types.ts";
