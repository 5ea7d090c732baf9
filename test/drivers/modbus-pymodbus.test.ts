/**
 * The driver against a Modbus server that is not ours: pymodbus packs every type in every byte
 * order with Python's struct module; the driver must decode each to the same value.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REGISTER_WIDTH } from "../../src/config/modbus-types.ts";
import { deviceSchema } from "../../src/config/schema/root.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import type { TagSample } from "../../src/drivers/types.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { DEBIAN_PYTHON, requirePymodbus } from "../support/tools.ts";

interface Case {
  name: string;
  type: string;
  order: string;
  /** What pymodbus packs (strings for integers beyond 2^53). */
  value: number | string;
  /** What the driver must yield. */
  expected: number | string;
  length?: number;
  placement?: "high_first" | "low_first";
}

const ORDERS_32 = ["ABCD", "CDAB", "BADC", "DCBA"];
const ORDERS_64 = ["ABCDEFGH", "GHEFCDAB", "BADCFEHG", "HGFEDCBA"];
const f32 = (v: number) => Math.fround(v);

function cases(): Case[] {
  const list: Case[] = [];
  const add = (type: string, orders: string[], value: number | string, expected = value) => {
    for (const order of orders)
      list.push({ name: `${type}_${order}_${list.length}`, type, order, value, expected });
  };
  add("int16", ["AB", "BA"], -12345);
  add("uint16", ["AB", "BA"], 54321);
  add("int32", ORDERS_32, -123456789);
  add("uint32", ORDERS_32, 3_000_000_000);
  add("float32", ORDERS_32, 123.456, f32(123.456));
  add("float32", ORDERS_32, -0.000123, f32(-0.000123));
  add("int64", ORDERS_64, -1234567890123);
  add("int64", ORDERS_64, "9007199254740993");
  add("uint64", ORDERS_64, "18446744073709551615");
  add("float64", ORDERS_64, -9.87654321e-5);
  list.push({
    name: "text_high",
    type: "string",
    order: "AB",
    value: "LOT-42/x",
    expected: "LOT-42/x",
    length: 6,
    placement: "high_first",
  });
  list.push({
    name: "text_low",
    type: "string",
    order: "AB",
    value: "LOT-42/x",
    expected: "LOT-42/x",
    length: 6,
    placement: "low_first",
  });
  return list;
}

/** The tag-map byte order for a wire order: 16-bit AB/BA are the 4-letter ABCD/BADC. */
function tagOrder(order: string): string {
  return order === "AB" ? "ABCD" : order === "BA" ? "BADC" : order;
}

describe("Modbus driver against pymodbus, an independent server", () => {
  let server: ChildProcess;
  let port: number;
  const all = cases();
  let address = 0;
  const placed = all.map((c) => {
    const at = address;
    address +=
      c.type === "string" ? c.length! : REGISTER_WIDTH[c.type as keyof typeof REGISTER_WIDTH];
    return { ...c, address: at };
  });
  const bitRegister = address + 1;

  beforeAll(async () => {
    requirePymodbus();
    const script = fileURLToPath(new URL("../support/pymodbus_server.py", import.meta.url));
    server = spawn(DEBIAN_PYTHON, [script], { stdio: ["pipe", "pipe", "inherit"] });
    const values = placed.map((c) => ({
      address: c.address,
      type: c.type,
      order: c.order,
      value: c.value,
      length: c.length,
      placement: c.placement,
    }));
    // bits 0 and 15 set in one register: 0x8001, packed as a uint16
    values.push({
      address: bitRegister,
      type: "uint16",
      order: "AB",
      value: 0x8001,
      length: undefined,
      placement: undefined,
    });
    server.stdin!.write(
      `${JSON.stringify({ values, coils: { 3: true, 4: false }, discrete_inputs: { 9: true } })}\n`,
    );
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: server.stdout! }).once("line", resolve);
      server.once("exit", (code) => reject(new Error(`pymodbus server exited with ${code}`)));
    });
    port = (JSON.parse(line) as { port: number }).port;
  });

  afterAll(async () => {
    if (!server || server.exitCode !== null) return;
    const exited = new Promise((r) => server.once("exit", r));
    server.stdin!.end();
    server.kill("SIGTERM");
    await exited;
  });

  it("decodes every type in every byte order, bits, coils and discrete inputs", async () => {
    const tags = [
      ...placed.map((c) => ({
        name: c.name,
        address: `HR${c.address}`,
        type: c.type,
        byte_order: tagOrder(c.order),
        ...(c.length === undefined ? {} : { length: c.length, string_byte_order: c.placement }),
      })),
      { name: "bit0", address: `HR${bitRegister}.0`, type: "bool" },
      { name: "bit1", address: `HR${bitRegister}.1`, type: "bool" },
      { name: "bit15", address: `IR${bitRegister}.15`, type: "bool" },
      { name: "coil3", address: "C3" },
      { name: "coil4", address: "C4" },
      { name: "input9", address: "DI9" },
    ];
    const device = deviceSchema.parse({
      id: "pymodbus",
      protocol: "modbus-tcp",
      host: "127.0.0.1",
      port,
      tags,
    });
    const driver = createDriver(device);
    const ctx = { signal: new AbortController().signal, log: silentLogger() };
    await driver.connect(ctx);
    let samples: TagSample[];
    try {
      samples = await driver.read!(ctx);
    } finally {
      await driver.close();
    }
    const got = Object.fromEntries(samples.map((s) => [s.tag, s]));
    for (const c of placed) {
      const sample = got[c.name]!;
      expect(sample.quality, `${c.name}: ${sample.reason}`).toBe("good");
      // a float32 must be the same float32 (the driver prints it as its shortest decimal)
      if (c.type === "float32")
        expect(Math.fround(sample.value as number), c.name).toBe(c.expected);
      else if (c.type === "float64") expect(sample.value, c.name).toBe(c.expected);
      else expect(sample.value, c.name).toEqual(c.expected);
    }
    expect(got.bit0!.value).toBe(true);
    expect(got.bit1!.value).toBe(false);
    expect(got.bit15!.value).toBe(true);
    expect(got.coil3!.value).toBe(true);
    expect(got.coil4!.value).toBe(false);
    expect(got.input9!.value).toBe(true);
  });
});
