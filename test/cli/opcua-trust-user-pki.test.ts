/**
 * Issue 13, point 7: without a gateway config, `plc2mqtt browse` and `plc2mqtt simulate opcua`
 * keep their certificates (private keys among them) in a user-level folder,
 * `$XDG_DATA_HOME/plc2mqtt/...` or else `~/.local/share/plc2mqtt/...`, never in the working
 * directory. The built CLI runs as a real process in an empty working directory, with
 * XDG_DATA_HOME (or HOME) pointing into this test's temporary folder.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpcuaFixture, startOpcuaFixture } from "../drivers/opcua-fixture.ts";
import { CLI } from "../support/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-user-pki-"));
let fixture: OpcuaFixture;

beforeAll(async () => {
  fixture = await startOpcuaFixture({}, false);
});
afterAll(async () => {
  await fixture?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An empty working directory and a user environment under this test's folder. */
function user(name: string, env: Record<string, string>) {
  const cwd = join(dir, name, "work");
  mkdirSync(cwd, { recursive: true });
  const clean = { ...process.env, XDG_DATA_HOME: "", ...env };
  return { cwd, env: clean };
}

function runIn(
  args: string[],
  where: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { ...where, timeout: 60_000 }, (error, _o, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stderr }),
    );
  });
}

describe("point 7: the CLI's own OPC UA certificates live in a user-level folder", () => {
  it("point 7: browse without a config uses $XDG_DATA_HOME/plc2mqtt/pki, never the working directory", async () => {
    const xdg = join(dir, "xdg-user", "data");
    const where = user("xdg-user", { XDG_DATA_HOME: xdg });
    const refused = await runIn(["browse", fixture.sim.endpointUrl], where);
    const pki = join(xdg, "plc2mqtt", "pki");
    // the simulator is not trusted there yet: the hint names that folder
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      new RegExp(`OPCUA_UNTRUSTED: .*plc2mqtt pki trust --pki-dir ${pki} [0-9a-f]{40}`),
    );
    expect(readdirSync(join(pki, "rejected")).length).toBe(1);
    expect(existsSync(join(pki, "own", "private", "private_key.pem"))).toBe(true);
    expect(readdirSync(where.cwd)).toEqual([]);
  }, 120_000);

  it("point 7: browse without a config or XDG_DATA_HOME uses ~/.local/share/plc2mqtt/pki", async () => {
    const home = join(dir, "home-user", "home");
    const where = user("home-user", { HOME: home });
    const refused = await runIn(["browse", fixture.sim.endpointUrl], where);
    const pki = join(home, ".local", "share", "plc2mqtt", "pki");
    expect(refused.stderr).toContain(`plc2mqtt pki trust --pki-dir ${pki} `);
    expect(readdirSync(join(pki, "rejected")).length).toBe(1);
    expect(readdirSync(where.cwd)).toEqual([]);
  }, 120_000);

  it("point 7: simulate opcua without --pki-dir keeps its certificate stores under $XDG_DATA_HOME/plc2mqtt", async () => {
    const xdg = join(dir, "sim-user", "data");
    const where = user("sim-user", { XDG_DATA_HOME: xdg });
    const child: ChildProcess = spawn(
      process.execPath,
      [CLI, "simulate", "opcua", "--port", "0", "--untrusted-clients", "close"],
      { ...where, stdio: ["ignore", "pipe", "inherit"] },
    );
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const lines: string[] = [];
      const reader = createInterface({ input: child.stdout! });
      await new Promise<void>((resolve, reject) => {
        reader.on("line", (line) => {
          lines.push(line);
          if (lines.length === 3) resolve();
        });
        child.once("exit", (code) => reject(new Error(`simulator exited (${code}): ${lines}`)));
      });
      const stores = join(xdg, "plc2mqtt", "opcua-simulator-pki");
      const certificate = join(stores, "server", "own", "certs", "certificate.pem");
      expect(lines[1]).toContain(`server certificate: ${certificate} `);
      expect(existsSync(certificate)).toBe(true);
      expect(lines[2]).toBe(
        `client certificates: trusted in ${join(stores, "server", "trusted", "certs")}; an unknown one is refused (connection closed) and put in ${join(stores, "server", "rejected")}`,
      );
      expect(readdirSync(where.cwd)).toEqual([]);
    } finally {
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  }, 120_000);
});
