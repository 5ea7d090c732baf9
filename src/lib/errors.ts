/**
 * The error catalogue. Every error a user can see carries a stable code from this list, a
 * message with context, and the underlying cause. The CLI maps codes to exit statuses.
 */
export const ErrorCodes = {
  CONFIG_INVALID: "config invalid",
  CONFIG_READ: "config file unreadable",
  CONFIG_REF: "config reference unresolved",
  MODBUS_CONNECT: "Modbus connect failed",
  MODBUS_READ: "Modbus read failed",
  MODBUS_EXCEPTION: "Modbus exception response",
  MODBUS_TIMEOUT: "Modbus request timed out",
  MODBUS_MALFORMED: "Modbus response malformed",
  MODBUS_DISCONNECTED: "Modbus connection lost",
  MODBUS_REPLY_IN_DOUBT: "Modbus reply in doubt: a frame nobody asked for came on the line",
  MODBUS_TRANSACTION_ID: "Modbus device does not echo transaction ids",
  OPCUA_CONNECT: "OPC UA connect failed",
  OPCUA_SECURITY: "OPC UA endpoint offers no matching security",
  OPCUA_UNTRUSTED: "OPC UA server certificate not trusted",
  OPCUA_CHANNEL_REFUSED: "OPC UA server refused the secure channel (it does not trust the gateway)",
  OPCUA_AUTH: "OPC UA login refused",
  OPCUA_BROWSE: "OPC UA browse failed",
  OPCUA_TYPE_MISMATCH: "OPC UA variable's data type does not match the configured type",
  OPCUA_VALUE_RANGE: "OPC UA value does not fit the configured type",
  OPCUA_ARRAY_VALUE: "OPC UA array value on a tag with states, alarms or a trigger",
  OPCUA_DISCONNECTED: "OPC UA connection lost",
  OPCUA_READ: "OPC UA read failed",
  OPCUA_SUBSCRIBE: "OPC UA subscription failed",
  OPCUA_UNRESOLVED: "OPC UA node id or browse path does not resolve",
  OPCUA_NOT_A_VARIABLE: "OPC UA node is not a Variable",
  PKI: "PKI operation failed",
  DEVICE_UNKNOWN: "device not in config",
  DEVICE_CONNECTION_LOST: "device connection lost: every polled tag is bad until it is back",
  SNAPSHOT_READ: "a trigger's snapshot read did not return the tag",
  TAG_UNKNOWN: "tag not in config",
  JOURNAL_FULL: "journal full",
  JOURNAL_IO: "journal unreadable or unwritable",
  JOURNAL_BATCH: "batch too large for the journal",
  MQTT_CONNECT: "MQTT connect failed",
  MQTT_PUBLISH: "MQTT publish refused",
  MQTT_CONNECTION_LOST: "MQTT connection lost",
  MQTT_SUBSCRIBE: "MQTT subscribe refused",
  HTTP_LISTEN: "health and metrics endpoint cannot listen",
  ABORTED: "operation aborted",
  USAGE: "bad command-line usage",
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.code = code;
    this.details = options.details;
  }
}

export function isGatewayError(err: unknown, code?: ErrorCode): err is GatewayError {
  return err instanceof GatewayError && (code === undefined || err.code === code);
}

/** The message of anything thrown, for reasons and logs. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A text over several lines (a driver's error, a status) as one line, runs of space as one. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
