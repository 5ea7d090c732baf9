/**
 * The OPC UA simulator and a gateway data_dir whose PKI trusts it (the server certificate is
 * copied into <data_dir>/pki/trusted/certs/, as an operator would trust it), plus a device with
 * one tag of every built-in type in every addressing form (ns=, nsu=, browse paths with and
 * without namespace, no type), for the driver tests. One PKI per test file.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type OpcuaSimulator,
  type OpcuaSimulatorOptions,
  startOpcuaSimulator,
} from "../../simulators/opcua/index.ts";
import { type DeviceConfig, deviceSchema } from "../../src/config/schema/root.ts";
import type { TagValue } from "../../src/drivers/types.ts";

export interface OpcuaFixture {
  sim: OpcuaSimulator;
  dir: string;
  dataDir: string;
  pkiDir: string;
  /** Trusts the simulator's certificate in the gateway PKI. */
  trust(): void;
  close(): Promise<void>;
}

export async function startOpcuaFixture(
  options: Partial<OpcuaSimulatorOptions> = {},
  trusted = true,
): Promise<OpcuaFixture> {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-opcua-"));
  const dataDir = join(dir, "data");
  const pkiDir = join(dataDir, "pki");
  const sim = await startOpcuaSimulator({ pkiDir: join(dir, "sim"), ...options });
  const fixture: OpcuaFixture = {
    sim,
    dir,
    dataDir,
    pkiDir,
    trust() {
      mkdirSync(join(pkiDir, "trusted", "certs"), { recursive: true });
      copyFileSync(sim.serverCertificateFile, join(pkiDir, "trusted", "certs", "simulator.pem"));
    },
    async close() {
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (trusted) fixture.trust();
  return fixture;
}

export const NSU = "nsu=urn:plc2mqtt:teststand;s=TestStand.";

export const OPCUA_TAGS = [
  { name: "depth", node: `${NSU}Measurement1`, type: "double" },
  { name: "result", browse_path: "/TestStand/Result", type: "int32" },
  { name: "ready", browse_path: "/2:TestStand/2:ResultReady", type: "boolean" },
  { name: "serial", node: `${NSU}SerialNumber` },
  { name: "state", node: `${NSU}MachineState`, type: "uint16" },
  { name: "curve", node: `${NSU}Curve`, type: "json" },
  { name: "i64", node: `${NSU}Types.Int64`, type: "int64" },
  { name: "u64", node: `${NSU}Types.UInt64` },
  { name: "sbyte", node: `${NSU}Types.SByte`, type: "sbyte" },
  { name: "float", node: `${NSU}Types.Float`, type: "float" },
  { name: "when", node: `${NSU}Types.DateTime`, type: "datetime" },
  { name: "bytes", node: `${NSU}Types.ByteString`, type: "bytestring" },
  { name: "guid", node: `${NSU}Types.Guid` },
  { name: "text", node: `${NSU}Types.LocalizedText`, type: "localizedtext" },
  { name: "status", node: `${NSU}Types.StatusCode`, type: "statuscode" },
];

export function opcuaDevice(endpoint: string, fields: Record<string, unknown> = {}): DeviceConfig {
  return deviceSchema.parse({
    id: "stand-1",
    protocol: "opcua",
    endpoint,
    sampling_interval: "0ms",
    publishing_interval: "50ms",
    request_timeout: "2s",
    tags: OPCUA_TAGS,
    ...fields,
  });
}

/** Known values for round `round`, set at the simulator; returns what each tag must read. */
export function setOpcuaValues(sim: OpcuaSimulator, round: number): Record<string, TagValue> {
  const when = new Date(Date.UTC(2024, 0, round, 12));
  const curve = [round, round + 0.5, -round];
  sim.set("Measurement1", 10 + round / 4);
  sim.set("Result", round % 3);
  sim.set("ResultReady", round % 2 === 1);
  sim.set("SerialNumber", `SN-${round}`);
  sim.set("MachineState", round % 3);
  sim.set("Curve", curve);
  sim.set("Types.Int64", -(2n ** 60n) - BigInt(round));
  sim.set("Types.UInt64", BigInt(round) * 1000n);
  sim.set("Types.SByte", -round);
  sim.set("Types.Float", 1.5 + round);
  sim.set("Types.DateTime", when);
  sim.set("Types.ByteString", Uint8Array.from([round, 0xff]));
  sim.set("Types.Guid", "72962B91-FA75-4AE6-8D28-B404DC7DAF63");
  sim.set("Types.LocalizedText", { text: `Prüfung ${round}`, locale: "de-DE" });
  sim.set("Types.StatusCode", round % 2 === 0 ? "BadSensorFailure" : "GoodClamped");
  return {
    depth: 10 + round / 4,
    result: round % 3,
    ready: round % 2 === 1,
    serial: `SN-${round}`,
    state: round % 3,
    curve,
    i64: (-(2n ** 60n) - BigInt(round)).toString(),
    u64: round * 1000,
    sbyte: -round,
    float: 1.5 + round,
    when: when.toISOString(),
    bytes: Buffer.from([round, 0xff]).toString("base64"),
    guid: "72962B91-FA75-4AE6-8D28-B404DC7DAF63",
    text: `Prüfung ${round}`,
    status: round % 2 === 0 ? "BadSensorFailure" : "GoodClamped",
  };
}
