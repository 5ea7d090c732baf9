/**
 * Scenario files: YAML that describes how a simulated machine's values move over time. The
 * run is a pure function of the file, the seed and the elapsed scenario time (see scenario.ts).
 *
 * Format (every key required unless a default is given; durations as in gateway configs):
 *
 *   unit: 1                 # unit id the values live in (default 1)
 *   step: 100ms             # resolution of scenario time (default 100ms)
 *   state:                  # the machine state: a seeded schedule
 *     address: HR100        # uint16 register holding the state's value
 *     initial: running
 *     states:
 *       running: { value: 1, min: 40s, max: 2m, next: { fault: 3, stopped: 1 } }
 *       fault:   { value: 2, min: 3s,  max: 12s, next: { running: 1 } }
 *       stopped: { value: 0, min: 5s,  max: 20s, next: { running: 1 } }
 *       # stays min..max (uniform), then moves to a `next` state chosen by weight
 *   counters:               # rising counts (wrap at the type's range)
 *     - name: good_count
 *       address: HR101
 *       type: uint32        # uint16 | uint32
 *       byte_order: ABCD    # ABCD (default) | CDAB | BADC | DCBA
 *       per_minute: 120     # average rate, jittered +-50% per step
 *       in_states: [running]  # counts only in these states
 *   signals:                # noisy analog values that follow the state
 *     - name: temperature
 *       address: IR10
 *       type: float32       # int16 | uint16 | int32 | uint32 | float32 | float64
 *       byte_order: CDAB
 *       rest: 24            # level outside the states listed in targets
 *       targets: { running: 68, fault: 52 }
 *       time_constant: 30s  # first-order lag towards the target
 *       noise: 0.3          # +- uniform noise added to each value
 *       decimals: 2         # rounding of the written value (default 2)
 *       scale: 1            # written raw = value / scale (default 1)
 *   batch:                  # optional: batches of `size` counts of a counter
 *     counter: good_count
 *     size: 50
 *     id_address: HR200     # string register block with the current batch id
 *     id_length: 10         # registers (2 characters each, high byte first, NUL padded)
 *     id_prefix: B2026-
 *     id_digits: 4          # B2026-0001, B2026-0002, ...
 *     first: 1
 *     done_address: C5      # coil (or register bit HRn.b) true for done_pulse per batch
 *     done_pulse: 1s        # the id changes to the next batch when the pulse ends
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { type ModbusAddress, parseModbusAddress } from "../../src/config/modbus-address.ts";
import { BYTE_ORDERS } from "../../src/config/modbus-types.ts";
import { duration } from "../../src/config/units.ts";
import { GatewayError } from "../../src/lib/errors.ts";

const address = (what: string, allowed: (a: ModbusAddress) => boolean) =>
  z.string().transform((text, ctx) => {
    try {
      const parsed = parseModbusAddress(text, 0);
      if (allowed(parsed)) return parsed;
      ctx.addIssue({ code: "custom", message: `${text} cannot hold ${what}` });
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
    return z.NEVER;
  });

const isWord = (a: ModbusAddress) =>
  (a.table === "holding_register" || a.table === "input_register") && a.bit === undefined;
const isBit = (a: ModbusAddress) =>
  a.table === "coil" || a.table === "discrete_input" || a.bit !== undefined;
const span = (min: number, max: number) =>
  duration({ min, max, description: "a duration such as 100ms, 5s or 2m" });
const name = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, "a name of letters, digits, _ and -");

const stateSchema = z.strictObject({
  value: z.number().int().min(0).max(65_535),
  min: span(1, 86_400_000),
  max: span(1, 86_400_000),
  next: z.record(name, z.number().positive()).optional(),
});

const scenarioSchema = z.strictObject({
  unit: z.number().int().min(0).max(255).default(1),
  step: span(1, 60_000).default(100),
  state: z.strictObject({
    address: address("a state", isWord),
    initial: name,
    states: z.record(name, stateSchema),
  }),
  counters: z
    .array(
      z.strictObject({
        name,
        address: address("a counter", isWord),
        type: z.enum(["uint16", "uint32"]),
        byte_order: z.enum(BYTE_ORDERS).default("ABCD"),
        per_minute: z.number().min(0).max(1_000_000),
        in_states: z.array(name).min(1),
      }),
    )
    .default([]),
  signals: z
    .array(
      z.strictObject({
        name,
        address: address("a signal", isWord),
        type: z.enum(["int16", "uint16", "int32", "uint32", "float32", "float64"]),
        byte_order: z.enum(BYTE_ORDERS).default("ABCD"),
        rest: z.number().finite(),
        targets: z.record(name, z.number().finite()).default({}),
        time_constant: span(1, 86_400_000),
        noise: z.number().min(0).finite().default(0),
        decimals: z.number().int().min(0).max(6).default(2),
        scale: z.number().finite().positive().default(1),
      }),
    )
    .default([]),
  batch: z
    .strictObject({
      counter: name,
      size: z.number().int().min(1),
      id_address: address("a batch id", isWord),
      id_length: z.number().int().min(1).max(125),
      id_prefix: z.string().max(200).default(""),
      id_digits: z.number().int().min(1).max(12).default(4),
      first: z.number().int().min(0).default(1),
      done_address: address("a batch-done flag", isBit),
      done_pulse: span(1, 3_600_000).default(1000),
    })
    .optional(),
});

export type ScenarioDef = z.output<typeof scenarioSchema>;

/** Names refer to declared states and counters; min <= max; ids fit their registers. */
function crossCheck(def: ScenarioDef): string[] {
  const problems: string[] = [];
  const states = Object.keys(def.state.states);
  const known = (what: string, s: string) => {
    if (!states.includes(s)) problems.push(`${what}: unknown state ${s}`);
  };
  known("state.initial", def.state.initial);
  for (const [id, state] of Object.entries(def.state.states)) {
    if (state.min > state.max) problems.push(`state.states.${id}: min is above max`);
    for (const next of Object.keys(state.next ?? {})) known(`state.states.${id}.next`, next);
  }
  for (const c of def.counters) for (const s of c.in_states) known(`counters.${c.name}`, s);
  for (const s of def.signals)
    for (const t of Object.keys(s.targets)) known(`signals.${s.name}`, t);
  const batch = def.batch;
  if (batch !== undefined) {
    if (!def.counters.some((c) => c.name === batch.counter)) {
      problems.push(`batch.counter: unknown counter ${batch.counter}`);
    }
    if (batch.id_prefix.length + batch.id_digits > 2 * batch.id_length) {
      problems.push("batch: id_prefix + id_digits characters do not fit in id_length registers");
    }
  }
  return problems;
}

export function parseScenario(text: string, source: string): ScenarioDef {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new GatewayError("CONFIG_INVALID", `scenario ${source} is not valid YAML`, {
      cause: err,
    });
  }
  const result = scenarioSchema.safeParse(raw);
  const problems = result.success
    ? crossCheck(result.data)
    : result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  if (!result.success || problems.length > 0) {
    throw new GatewayError("CONFIG_INVALID", `scenario ${source}: ${problems.join("; ")}`, {
      details: { problems },
    });
  }
  return result.data;
}

/** Bundled scenarios by name, in the source tree and next to the built files. */
function bundledPaths(name: string): string[] {
  return [
    fileURLToPath(new URL(`./scenarios/${name}.yaml`, import.meta.url)),
    fileURLToPath(new URL(`../../../simulators/modbus/scenarios/${name}.yaml`, import.meta.url)),
  ];
}

/** Loads "packaging-line" (a bundled scenario) or a path to a scenario YAML. */
export async function loadScenario(nameOrPath: string): Promise<ScenarioDef> {
  const bundled = /^[a-z0-9-]+$/.test(nameOrPath) ? bundledPaths(nameOrPath) : [];
  for (const path of [...bundled, nameOrPath]) {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if (path !== nameOrPath) continue;
      const hint = bundled.length > 0 ? " (not a bundled scenario either)" : "";
      throw new GatewayError("CONFIG_READ", `cannot read scenario ${nameOrPath}${hint}`, {
        cause: err,
      });
    }
    return parseScenario(text, path);
  }
  throw new GatewayError("CONFIG_READ", `cannot read scenario ${nameOrPath}`);
}
