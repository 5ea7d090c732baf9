/**
 * The OPC UA device and tag schema: the only source of the OPC UA config types. Secure by
 * default: SignAndEncrypt with the best policy the endpoint offers; None must be chosen
 * explicitly (and is warned about at every connect).
 */
import { z } from "zod";
import { duration } from "../units.ts";
import { assetContext, identifier, reconnectFields } from "./common.ts";
import { secretRef } from "./gateway.ts";
import { deviceRuleFields, tagRuleFields } from "./rules.ts";

/**
 * The scalar value types of OPC UA tags, one per built-in data type the gateway converts, named
 * in the gateway's one vocabulary (the Modbus names where a Modbus type exists: `bool`,
 * `float32`, `float64`, ...).
 */
export const OPCUA_SCALAR_TYPES = [
  "bool",
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
  "float32",
  "float64",
  "string",
  "datetime",
  "guid",
  "bytestring",
  "localizedtext",
  "statuscode",
] as const;
export type OpcuaScalarType = (typeof OPCUA_SCALAR_TYPES)[number];

/**
 * The OPC UA spellings of the built-in types (issue 13.2): accepted as aliases of the gateway's
 * names, and kept as written (messages name the type the way the config writes it).
 */
export const OPCUA_TYPE_ALIASES = {
  boolean: "bool",
  sbyte: "int8",
  byte: "uint8",
  float: "float32",
  double: "float64",
} as const satisfies Record<string, OpcuaScalarType>;
export type OpcuaScalarAlias = keyof typeof OPCUA_TYPE_ALIASES;

/** A scalar type as the config may write it: the gateway's name or its OPC UA alias. */
export type OpcuaScalarName = OpcuaScalarType | OpcuaScalarAlias;
/** A one-dimensional array of a scalar type (`float64[]`): a JSON array of such values. */
export type OpcuaArrayType = `${OpcuaScalarName}[]`;
/** Any type the config may write: scalars, their arrays, and json (anything, as JSON). */
export type OpcuaType = OpcuaScalarName | OpcuaArrayType | "json";
/** A type in the gateway's names only (no alias): what the driver and the engine work with. */
export type CanonicalOpcuaType = OpcuaScalarType | `${OpcuaScalarType}[]` | "json";

const SCALAR_NAMES: readonly OpcuaScalarName[] = [
  ...OPCUA_SCALAR_TYPES,
  ...(Object.keys(OPCUA_TYPE_ALIASES) as OpcuaScalarAlias[]),
];

export const OPCUA_TYPES = [
  ...SCALAR_NAMES,
  ...SCALAR_NAMES.map((t): OpcuaArrayType => `${t}[]`),
  "json",
] as readonly OpcuaType[] as readonly [OpcuaType, ...OpcuaType[]];

/** The gateway's name of a scalar type written either way (`double` -> `float64`). */
export function canonicalScalar(type: OpcuaScalarName): OpcuaScalarType {
  return (OPCUA_TYPE_ALIASES as Record<string, OpcuaScalarType>)[type] ?? (type as OpcuaScalarType);
}

/** The gateway's name of any type written either way (`double[]` -> `float64[]`). */
export function canonicalType(type: OpcuaType): CanonicalOpcuaType {
  const element = elementType(type);
  if (element !== undefined) return `${element}[]`;
  return type === "json" ? type : canonicalScalar(type as OpcuaScalarName);
}

/** The element type (gateway's name) of an array type, undefined for a scalar type or json. */
export function elementType(type: OpcuaType): OpcuaScalarType | undefined {
  return type.endsWith("[]") ? canonicalScalar(type.slice(0, -2) as OpcuaScalarName) : undefined;
}

export const SECURITY_POLICIES = [
  "Basic256Sha256",
  "Aes128_Sha256_RsaOaep",
  "Aes256_Sha256_RsaPss",
] as const;
/** Deprecated policies: accepted only when named explicitly. */
export const DEPRECATED_POLICIES = ["Basic128Rsa15", "Basic256"] as const;

const nodeId = z
  .string()
  .min(1)
  .regex(
    /^(nsu=[^;]+;|ns=\d+;)?(i=\d+|s=.+|g=[0-9a-fA-F-]{36}|b=[A-Za-z0-9+/=]+)$/,
    "a node id such as ns=2;s=Line1.Speed, nsu=urn:plant;s=Speed, ns=0;i=2258 or i=2258",
  )
  .describe("Node id; the nsu=<namespace URI> form survives a server renumbering its namespaces");

const browsePath = z
  .string()
  .regex(/^\/.+/, "a browse path from Objects such as /2:TestStand/2:Result or /TestStand/Result")
  .describe("Browse path from the Objects folder, resolved to a node id at connect");

const acquisition = z.enum(["subscribe", "poll"]);

export const opcuaTagSchema = z
  .strictObject({
    name: identifier("a tag name").describe("Tag name, unique within the device"),
    node: nodeId.optional(),
    browse_path: browsePath.optional(),
    type: z
      .enum(OPCUA_TYPES)
      .optional()
      .describe(
        "Value type of the events, in the gateway's names (bool, int32, float64...; the OPC UA names boolean, sbyte, byte, float, double are aliases); default: the variable's DataType, read at connect; checked against the variable's DataType at connect; float64[] and the like for one-dimensional arrays; json for anything, structures too",
      ),
    mode: acquisition
      .optional()
      .describe("subscribe (monitored item, default) or poll (batched reads)"),
    sampling_interval: duration({
      min: 0,
      max: 3_600_000,
      description: "How often the server samples the value (default the device's)",
    }).optional(),
    queue_size: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .optional()
      .describe("Server-side queue of changes between publishes (default the device's)"),
    poll_interval: duration({
      min: 10,
      max: 86_400_000,
      description: "For mode: poll, how often to read (default the device's)",
    }).optional(),
    description: z.string().max(500).optional().describe("Free text for people"),
    ...tagRuleFields,
  })
  .refine((t) => (t.node === undefined) !== (t.browse_path === undefined), {
    message: "give exactly one of node or browse_path",
    path: ["node"],
  });

const authSchema = z
  .discriminatedUnion("type", [
    z.strictObject({ type: z.literal("anonymous") }),
    z.strictObject({
      type: z.literal("username"),
      username: z.string().min(1).describe("User name; ${env:NAME} and ${file:/path} allowed"),
      password: secretRef("the OPC UA password"),
    }),
    z.strictObject({
      type: z.literal("certificate"),
      cert: z.string().min(1).describe("PEM file of the X.509 user certificate"),
      key: z.string().min(1).describe("PEM file of its private key"),
    }),
  ])
  .describe("User identity (default anonymous)");

export const opcuaDeviceSchema = z
  .strictObject({
    protocol: z.literal("opcua").describe("OPC UA client (binary opc.tcp)"),
    id: identifier("a device id").describe("Device id, unique in the gateway; part of topics"),
    ...assetContext,
    ...deviceRuleFields,
    endpoint: z
      .string()
      .regex(/^opc\.tcp:\/\/[^\s]+$/, "expected opc.tcp://host:port[/path]")
      .describe("Server endpoint URL"),
    security: z
      .strictObject({
        mode: z
          .enum(["SignAndEncrypt", "Sign", "None"])
          .default("SignAndEncrypt")
          .describe("Message security (default SignAndEncrypt)"),
        policy: z
          .enum(["auto", ...SECURITY_POLICIES, ...DEPRECATED_POLICIES])
          .default("auto")
          .describe("Security policy; auto picks the best one the endpoint offers (default)"),
      })
      .default({ mode: "SignAndEncrypt", policy: "auto" })
      .describe("Secure channel settings"),
    auth: authSchema.default({ type: "anonymous" }),
    mode: acquisition.default("subscribe").describe("subscribe (default) or poll"),
    publishing_interval: duration({
      min: 10,
      max: 3_600_000,
      description: "Subscription publishing interval (default 1s)",
    }).default(1000),
    sampling_interval: duration({
      min: 0,
      max: 3_600_000,
      description: "Default sampling interval of monitored items (default 250ms)",
    }).default(250),
    queue_size: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(10)
      .describe("Default monitored item queue size (default 10)"),
    poll_interval: duration({
      min: 10,
      max: 86_400_000,
      description: "For mode: poll, how often to read (default 1s)",
    }).default(1000),
    request_timeout: duration({
      min: 100,
      max: 600_000,
      description: "Timeout of each service call (default 10s)",
    }).default(10_000),
    session_timeout: duration({
      min: 1000,
      max: 3_600_000,
      description: "Requested session timeout (default 60s)",
    }).default(60_000),
    ...reconnectFields("the session", 1000),
    tags: z.array(opcuaTagSchema).min(1).max(100_000).describe("The variables to read"),
  })
  .superRefine((device, ctx) => {
    // With mode None nothing checks the server's certificate, yet a user name token is
    // encrypted to it (and an X.509 token signed for it): credentials could go to anyone.
    if (device.security.mode === "None" && device.auth.type !== "anonymous") {
      ctx.addIssue({
        code: "custom",
        path: ["auth", "type"],
        message: `${device.auth.type} login needs security mode Sign or SignAndEncrypt: with None the server's certificate is never checked, so the credentials could reach an impostor`,
      });
    }
  })
  .describe("An OPC UA server");

export type OpcuaTagConfig = z.output<typeof opcuaTagSchema>;
export type OpcuaDeviceConfig = z.output<typeof opcuaDeviceSchema>;
