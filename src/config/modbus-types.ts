/** The value types a Modbus tag can have, and how many registers each one spans. */
export const MODBUS_TYPES = [
  "bool",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
  "float32",
  "float64",
  "string",
] as const;

export type ModbusType = (typeof MODBUS_TYPES)[number];

/** Registers per value; a string spans its configured `length`; bool spans one (bit) or none. */
export const REGISTER_WIDTH: Record<Exclude<ModbusType, "string">, number> = {
  bool: 1,
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  float32: 2,
  int64: 4,
  uint64: 4,
  float64: 4,
};

/**
 * Byte orders name the position of each byte of the big-endian value on the wire, A being
 * the most significant: ABCD is plain Modbus (big-endian words, high word first), CDAB swaps
 * the words, BADC swaps the bytes in each word, DCBA does both. The 8-letter forms say the
 * same for 64-bit values; a 4-letter order applies to 64-bit values as its 8-letter twin.
 */
export const BYTE_ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"] as const;
export const BYTE_ORDERS_64 = ["ABCDEFGH", "GHEFCDAB", "BADCFEHG", "HGFEDCBA"] as const;
export type ByteOrder = (typeof BYTE_ORDERS)[number];
export type ByteOrderAny = ByteOrder | (typeof BYTE_ORDERS_64)[number];

/** The 4-letter order equivalent to any accepted order. */
export function canonicalByteOrder(order: ByteOrderAny): ByteOrder {
  const index = (BYTE_ORDERS_64 as readonly string[]).indexOf(order);
  return index >= 0 ? BYTE_ORDERS[index]! : (order as ByteOrder);
}
