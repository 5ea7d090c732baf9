/**
 * The engine's public face: change detection from samples to events (pure; see engine.ts for
 * the contract and the rule modules for their formulas).
 */
export { createEngine, type Engine, type EngineStats, type SnapshotRead } from "./engine.ts";
export { engineDeviceFromConfig } from "./from-config.ts";
/** A state tag's state name for a raw value (`plc2mqtt read` prints it beside the value). */
export { stateName } from "./states.ts";
export type { Deadband, EngineDevice, EngineTag, Range, TriggerRule, ValueType } from "./types.ts";
