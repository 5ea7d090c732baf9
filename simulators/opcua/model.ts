/**
 * The test stand's address-space model, as plain data (no node-opcua here): every variable's
 * name, OPC UA built-in type, initial value and metadata, and the one JS representation of
 * each type that `set()` accepts and `get()` returns.
 *
 * Names are the node id's string part after "TestStand." ("Measurement1", "Types.Int64"); the
 * node id is `ns=<index>;s=TestStand.<name>` and the browse path Objects/TestStand/<name with
 * "." as "/">. JS values: Boolean boolean; integers up to 32 bits and Float/Double number;
 * Int64/UInt64 bigint; String string; DateTime Date; ByteString Uint8Array; Guid upper-case
 * string; LocalizedText { text, locale }; StatusCode its name ("Good", "BadSensorFailure");
 * Double[] number[]. Types.Variant has DataType BaseDataType and ValueRank Any, like a PLC
 * variable declared without a type: its JS value is a TypedValue naming the built-in type of
 * each write ({ dataType: "Int32", value: 129 }; an array of values makes an array variant;
 * any built-in type but Boolean, which node-opcua refuses in a BaseDataType variable).
 * Types.Enumeration (DataType ServerState, an enumeration) and Types.Duration (DataType
 * Duration) hold Int32 and Double values under a DataType that is a subtype.
 * `coerce` refuses anything else with the variable's name in the message.
 */

export type BuiltInType =
  | "Boolean"
  | "SByte"
  | "Byte"
  | "Int16"
  | "UInt16"
  | "Int32"
  | "UInt32"
  | "Int64"
  | "UInt64"
  | "Float"
  | "Double"
  | "String"
  | "DateTime"
  | "ByteString"
  | "Guid"
  | "LocalizedText"
  | "StatusCode";

export interface LocalizedTextValue {
  text: string;
  locale: string;
}

/** A scalar value of some built-in type, in that type's JS form. */
export type ScalarValue =
  | boolean
  | number
  | bigint
  | string
  | Date
  | Uint8Array
  | LocalizedTextValue;

/**
 * A value of a BaseDataType variable: the variant's built-in type and its value in that type's
 * JS form, or an array of such values (a one-dimensional array variant).
 */
export interface TypedValue {
  dataType: BuiltInType;
  value: ScalarValue | ScalarValue[];
}

export type SimValue = ScalarValue | number[] | TypedValue;

export interface VariableSpec {
  name: string;
  /** BaseDataType: any built-in type per write (the value is a TypedValue). */
  dataType: BuiltInType | "BaseDataType";
  /**
   * The DataType node when it is a subtype of `dataType` (a namespace 0 name such as
   * "Duration" or the enumeration "ServerState"); values are still of `dataType`.
   */
  subtype?: string;
  /** Double[] when true (only used with Double). */
  array?: boolean;
  initial: SimValue;
  description: string;
  /** AnalogItem metadata: EURange and EngineeringUnits (a standard unit name of node-opcua). */
  analog?: { low: number; high: number; unit: "millimetre" | "newton" | "bar" };
}

export const STAND_FOLDER = "TestStand";
export const TYPES_FOLDER = "Types";

export const MACHINE_STATES = { stopped: 0, running: 1, fault: 2 } as const;
export const RESULTS = { none: 0, pass: 1, fail: 2 } as const;

/** Base values of the measurements; the schedule adds noise around them. */
export const MEASUREMENT_BASE = [12.5, 250, 4.2] as const;
export const CURVE_POINTS = 16;

export const STAND_VARIABLES: readonly VariableSpec[] = [
  {
    name: "Measurement1",
    dataType: "Double",
    initial: MEASUREMENT_BASE[0],
    description: "Press depth",
    analog: { low: 0, high: 50, unit: "millimetre" },
  },
  {
    name: "Measurement2",
    dataType: "Double",
    initial: MEASUREMENT_BASE[1],
    description: "Press force",
    analog: { low: 0, high: 1000, unit: "newton" },
  },
  {
    name: "Measurement3",
    dataType: "Double",
    initial: MEASUREMENT_BASE[2],
    description: "Leak test pressure",
    analog: { low: 0, high: 10, unit: "bar" },
  },
  { name: "Result", dataType: "Int32", initial: 0, description: "0 none, 1 pass, 2 fail" },
  {
    name: "ResultReady",
    dataType: "Boolean",
    initial: false,
    description: "Pulses true when a test completes",
  },
  { name: "SerialNumber", dataType: "String", initial: "", description: "Part under test" },
  { name: "BatchId", dataType: "String", initial: "B0001", description: "Current batch" },
  {
    name: "MachineState",
    dataType: "UInt16",
    initial: 0,
    description: "0 stopped, 1 running, 2 fault",
  },
  {
    name: "Curve",
    dataType: "Double",
    array: true,
    initial: new Array<number>(CURVE_POINTS).fill(0),
    description: "Force curve of the last test (Double[16])",
  },
];

/** One variable of every built-in scalar type, with a fixed, non-trivial initial value. */
export const TYPE_VARIABLES: readonly VariableSpec[] = (
  [
    ["Boolean", true],
    ["SByte", -100],
    ["Byte", 200],
    ["Int16", -30_000],
    ["UInt16", 60_000],
    ["Int32", -2_000_000_000],
    ["UInt32", 4_000_000_000],
    ["Int64", -9_007_199_254_740_993n],
    ["UInt64", 18_000_000_000_000_000_000n],
    ["Float", 1.5],
    ["Double", Math.PI],
    ["String", "Grüße, OPC UA"],
    ["DateTime", new Date("2024-05-06T07:08:09.123Z")],
    ["ByteString", Uint8Array.from([0xde, 0xad, 0xbe, 0xef])],
    ["Guid", "72962B91-FA75-4AE6-8D28-B404DC7DAF63"],
    ["LocalizedText", { text: "Prüfstand", locale: "de-DE" }],
    ["StatusCode", "UncertainLastUsableValue"],
  ] as const satisfies readonly (readonly [BuiltInType, SimValue])[]
).map(([dataType, initial]) => ({
  name: `${TYPES_FOLDER}.${dataType}`,
  dataType,
  initial,
  description: `A ${dataType} scalar`,
}));

/** Types.Variant: DataType BaseDataType, ValueRank Any; each write picks the variant's type. */
export const VARIANT_VARIABLE: VariableSpec = {
  name: `${TYPES_FOLDER}.Variant`,
  dataType: "BaseDataType",
  initial: { dataType: "Int32", value: 0 },
  description: "Any built-in type, scalar or array, chosen by each write",
};

/** Variables whose DataType is a subtype: an enumeration (Int32 values) and Duration (Double). */
export const SUBTYPE_VARIABLES: readonly VariableSpec[] = [
  {
    name: `${TYPES_FOLDER}.Enumeration`,
    dataType: "Int32",
    subtype: "ServerState",
    initial: 0,
    description: "An enumeration (DataType ServerState, i=852): Int32 values",
  },
  {
    name: `${TYPES_FOLDER}.Duration`,
    dataType: "Double",
    subtype: "Duration",
    initial: 1500,
    description: "A Double subtype (DataType Duration, i=290), in milliseconds",
  },
];

export const ALL_VARIABLES: readonly VariableSpec[] = [
  ...STAND_VARIABLES,
  ...TYPE_VARIABLES,
  VARIANT_VARIABLE,
  ...SUBTYPE_VARIABLES,
];

const INT_RANGES: Partial<Record<BuiltInType, readonly [number, number]>> = {
  SByte: [-128, 127],
  Byte: [0, 255],
  Int16: [-32_768, 32_767],
  UInt16: [0, 65_535],
  Int32: [-2_147_483_648, 2_147_483_647],
  UInt32: [0, 4_294_967_295],
};

const GUID_RE = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/i;

function bad(spec: VariableSpec, value: unknown, expected: string): TypeError {
  const shown = typeof value === "bigint" ? `${value}n` : (JSON.stringify(value) ?? String(value));
  return new TypeError(
    `OPC UA simulator: ${spec.name} is ${spec.dataType}, got ${shown}; expected ${expected}`,
  );
}

const BUILT_IN_TYPES: ReadonlySet<string> = new Set(TYPE_VARIABLES.map((s) => s.dataType));

/** A TypedValue for a BaseDataType variable: its type known, each value coerced to it. */
function coerceTyped(spec: VariableSpec, value: unknown): TypedValue {
  const typed = value as Partial<TypedValue> | null;
  if (
    typeof typed !== "object" ||
    typed === null ||
    typeof typed.dataType !== "string" ||
    !BUILT_IN_TYPES.has(typed.dataType)
  ) {
    throw bad(spec, value, "{ dataType: <built-in type name>, value }");
  }
  // node-opcua refuses a Boolean variant in a variable whose DataType is not Boolean
  // (UAVariableImpl.verifyVariantCompatibility), so BaseDataType cannot hold one.
  if (typed.dataType === "Boolean") throw bad(spec, value, "a type other than Boolean");
  const element: VariableSpec = { ...spec, dataType: typed.dataType };
  const coerceOne = (v: unknown) => coerce(element, v) as ScalarValue;
  return {
    dataType: typed.dataType,
    value: Array.isArray(typed.value) ? typed.value.map(coerceOne) : coerceOne(typed.value),
  };
}

/** Checks and normalises a value for `spec` (numbers to bigint for 64-bit, Guid upper-case). */
export function coerce(spec: VariableSpec, value: unknown): SimValue {
  if (spec.dataType === "BaseDataType") return coerceTyped(spec, value);
  if (spec.array) {
    if (!Array.isArray(value) || !value.every((v) => typeof v === "number")) {
      throw bad(spec, value, "an array of numbers");
    }
    return [...value];
  }
  const range = INT_RANGES[spec.dataType];
  if (range !== undefined) {
    if (
      typeof value !== "number" ||
      !Number.isInteger(value) ||
      value < range[0] ||
      value > range[1]
    ) {
      throw bad(spec, value, `an integer ${range[0]}..${range[1]}`);
    }
    return value;
  }
  switch (spec.dataType) {
    case "Boolean":
      if (typeof value !== "boolean") throw bad(spec, value, "a boolean");
      return value;
    case "Float":
    case "Double":
      if (typeof value !== "number") throw bad(spec, value, "a number");
      return value;
    case "Int64":
    case "UInt64": {
      const big = typeof value === "number" && Number.isInteger(value) ? BigInt(value) : value;
      const [lo, hi] =
        spec.dataType === "Int64" ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
      if (typeof big !== "bigint" || big < lo || big > hi)
        throw bad(spec, value, `a bigint ${lo}..${hi}`);
      return big;
    }
    case "String":
    case "StatusCode":
      if (typeof value !== "string") throw bad(spec, value, "a string");
      return value;
    case "DateTime":
      if (!(value instanceof Date) || Number.isNaN(value.getTime()))
        throw bad(spec, value, "a Date");
      return new Date(value.getTime());
    case "ByteString":
      if (!(value instanceof Uint8Array)) throw bad(spec, value, "a Uint8Array or Buffer");
      return Uint8Array.from(value);
    case "Guid":
      if (typeof value !== "string" || !GUID_RE.test(value))
        throw bad(spec, value, "a GUID string");
      return value.toUpperCase();
    case "LocalizedText": {
      const lt = value as Partial<LocalizedTextValue> | null;
      if (typeof lt !== "object" || lt === null || typeof lt.text !== "string") {
        throw bad(spec, value, "{ text, locale }");
      }
      return { text: lt.text, locale: typeof lt.locale === "string" ? lt.locale : "" };
    }
    default:
      throw bad(spec, value, "a supported type");
  }
}

const BY_NAME = new Map(ALL_VARIABLES.map((spec) => [spec.name, spec]));

export function specOf(name: string): VariableSpec {
  const spec = BY_NAME.get(name);
  if (spec === undefined) {
    throw new RangeError(
      `OPC UA simulator: no variable ${JSON.stringify(name)}; known: ${[...BY_NAME.keys()].join(", ")}`,
    );
  }
  return spec;
}
