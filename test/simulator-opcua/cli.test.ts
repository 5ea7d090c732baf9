/**
 * `plc2mqtt simulate opcua` as a user runs it: a real process that prints its endpoint and
 * server certificate path, serves a client that trusts that certificate, never prints a
 * password, and exits 0 on SIGTERM; a bad flag exits 2.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { OpcuaSimulator } from "../../simulators/opcua/index.ts";
import { eventually } from "../support/resources.ts";
import { connect, makePki, type Pki, readValue } from "./helpers.ts";

const run = promisify(execFile);
const main = fileURLToPath(new URL("../../src/main.ts", import.meta.url));
const children: ChildProcess[] = [];
const pki: Pki = makePki();

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});
afterAll(() => pki.cleanup());

async function simulate(args: string[]) {
  const child = spawn(process.execPath, [main, "simulate", "opcua", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let out = "";
  const lines = await new Promise<string[]>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const all = out.split("\n");
      if (all.length > 2) resolve(all.slice(0, 2));
    });
    child.once("exit", () => reject(new Error(`exited before printing: ${stderr}`)));
  });
  return { child, lines, exited, output: () => out + stderr };
}

describe("plc2mqtt simulate opcua", () => {
  it("prints its endpoint and certificate, serves a trusting client, exits 0 on SIGTERM", async () => {
    const pkiDir = join(pki.dir, "cli-pki");
    const { child, lines, exited, output } = await simulate([
      "--port",
      "0",
      "--pki-dir",
      pkiDir,
      "--user",
      "operator:hunter2",
      "--seed",
      "4",
      "--tick",
      "50ms",
    ]);
    expect(lines[0]).toMatch(
      /^plc2mqtt OPC UA simulator: opc\.tcp:\/\/127\.0\.0\.1:\d+, namespace urn:plc2mqtt:teststand \(ns=2\), .*login anonymous and users operator, test stand \(seed 4, tick 50ms\)/,
    );
    const certificate = /^server certificate: (\S+)/.exec(lines[1]!)?.[1];
    expect(certificate).toBe(join(pkiDir, "server", "own", "certs", "certificate.pem"));
    expect(existsSync(certificate!)).toBe(true);

    const endpointUrl = /(opc\.tcp:\/\/\S+),/.exec(lines[0]!)![1]!;
    const sim = { endpointUrl, namespaceIndex: 2 } as OpcuaSimulator;
    const c = await connect(sim, await pki.clientStore(certificate!), {
      mode: "SignAndEncrypt",
      user: { name: "operator", password: "hunter2" },
    });
    try {
      await eventually(
        async () =>
          (await readValue(c.session, "ns=2;s=TestStand.SerialNumber")).value.value === "SN-4-1",
        5000,
        "the first test cycle",
      );
    } finally {
      await c.close();
    }
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output()).not.toContain("hunter2");
  });

  it("exits 2 with a message for a bad flag", async () => {
    const bad = await run(process.execPath, [
      main,
      "simulate",
      "opcua",
      "--user",
      "nopassword",
    ]).catch((err: { code: number; stderr: string }) => err);
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringMatching(/--user nopassword/) });
  });
});
