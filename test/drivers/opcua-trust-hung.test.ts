/**
 * Issue 13, point 7: while an OPC UA server hangs (the simulator in a process of its own,
 * stopped with SIGSTOP: the kernel still accepts TCP connections, nothing answers), each
 * failed connect must be one clean line with the real cause, in the device.status error (what
 * the runner reports) and in the log line: no newline, not "may have been rejected by
 * server", the same text not repeated (`...: X: X`), and the timeout named with the option
 * that sets it. Both connect paths: SignAndEncrypt (GetEndpoints first) and None.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DeviceStatus, DriverRunner } from "../../src/app/driver-runner.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { eventually } from "../support/resources.ts";
import { opcuaDevice } from "./opcua-fixture.ts";

const SIMULATOR = join(import.meta.dirname, "opcua-simulator-process.ts");

let dir: string;
let child: ChildProcess | undefined;
let endpoint: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "plc2mqtt-opcua-hung-"));
  const proc = spawn(process.execPath, [SIMULATOR, join(dir, "sim")], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  child = proc;
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once("line", resolve);
    proc.once("exit", (code) => reject(new Error(`the simulator process exited (${code})`)));
  });
  const sim = JSON.parse(first) as { endpointUrl: string; serverCertificateFile: string };
  endpoint = sim.endpointUrl;
  const trusted = join(dir, "data", "pki", "trusted", "certs");
  mkdirSync(trusted, { recursive: true });
  copyFileSync(sim.serverCertificateFile, join(trusted, "sim.pem"));
  proc.kill("SIGSTOP");
}, 60_000);

afterAll(async () => {
  const proc = child;
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGCONT");
    proc.stdin?.end();
    const killer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(killer);
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("point 7: a hung OPC UA server", () => {
  for (const mode of ["SignAndEncrypt", "None"] as const) {
    it(`point 7: a failed connect to a hung server (${mode}) is one clean line with the real cause`, async () => {
      const statuses: DeviceStatus[] = [];
      const logged: Record<string, unknown>[] = [];
      const log = createLogger({
        level: "warn",
        destination: { write: (line: string) => void logged.push(JSON.parse(line)) },
      });
      const device = opcuaDevice(endpoint, {
        id: `hung-${mode}`,
        security: { mode },
        request_timeout: "1s",
        tags: [{ name: "batch", node: "nsu=urn:plc2mqtt:teststand;s=TestStand.BatchId" }],
      });
      const runner = new DriverRunner({
        driver: createDriver(device, { dataDir: join(dir, "data") }),
        log,
        onSamples: () => {},
        onStatus: (s) => statuses.push(s),
        reconnect: { minMs: 100, maxMs: 300 },
      });
      runner.start();
      const failed = () => statuses.flatMap((s) => (s.status === "failed" ? [s.error] : []));
      try {
        await eventually(() => failed().length >= 2, 60_000, "two failed connects");
      } finally {
        await runner.stop();
      }
      const where =
        mode === "None" ? "cannot open a None/None channel to" : "cannot reach OPC UA server";
      const expected = `${where} ${endpoint}: no answer within 1000 ms (request_timeout): the server accepts the connection but does not respond (hung or overloaded)`;
      // the device.status error: the same clean line at every retry
      expect(new Set(failed())).toEqual(new Set([expected]));
      // the log line: message with its cause, each part once, on one line
      const line = logged.find((l) => l.msg === "device connect failed");
      const message = (line?.err as { message?: string } | undefined)?.message ?? "";
      expect(message.startsWith(`${expected}: `), message).toBe(true);
      expect(message).not.toMatch(/\n|may have been rejected/);
      expect(message.split("no answer within").length, message).toBe(2);
      expect(message.split("timeout was =").length, message).toBe(2);
    }, 90_000);
  }
});
