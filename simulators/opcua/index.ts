/**
 * The OPC UA PLC simulator, as a library: start on port 0 with a PKI folder, set values and
 * status codes, advance the seeded test-stand schedule, restart, close. node-opcua (~70 MB,
 * ~0.5 s) is loaded on the first start, not on import.
 */
import type { OpcuaServerOptions } from "./server.ts";
import type { OpcuaSimulator } from "./types.ts";

export type { ClientRefusal } from "./client-trust.ts";
export type { OpcuaServerOptions } from "./server.ts";

/** Starts the simulator (options: the contract of types.ts and OpcuaServerOptions' own). */
export async function startOpcuaSimulator(options: OpcuaServerOptions): Promise<OpcuaSimulator> {
  const { startOpcuaSimulator: start } = await import("./server.ts");
  return start(options);
}

export type { BuiltInType, VariableSpec } from "./model.ts";
export {
  ALL_VARIABLES,
  STAND_VARIABLES,
  SUBTYPE_VARIABLES,
  TYPE_VARIABLES,
  VARIANT_VARIABLE,
} from "./model.ts";
export { CYCLE_MS, STEP_MS } from "./schedule.ts";
export type {
  LocalizedTextValue,
  OpcuaSecurityMode,
  OpcuaSimulator,
  OpcuaSimulatorOptions,
  ScalarValue,
  SetOptions,
  SimulatorCounts,
  SimValue,
  TypedValue,
} from "./types.ts";
