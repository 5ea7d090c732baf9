/**
 * systemd/plc2mqtt.service: the product's "systemd-analyze security score 2.0 or lower", with
 * and without the serial-access.conf drop-in, the unit is valid for `systemd-analyze verify`,
 * and the settings the daemon and the config rely on are there. Without systemd-analyze the
 * analyzer tests fail with the apt hint, in CI or not: nothing here is skipped.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  directive,
  overallExposure,
  readUnit,
  run,
  SYSTEMD_ANALYZE_HINT,
  SYSTEMD_DIR,
  systemdAnalyze,
  UNIT_FILE,
} from "./support.ts";

const tmp = mkdtempSync(join(tmpdir(), "plc2mqtt-unit-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const analyze = () => systemdAnalyze();

/** A root holding the unit and the given drop-ins under etc/systemd/system. */
function stagedRoot(name: string, dropIns: Record<string, string>): string {
  const root = join(tmp, name);
  const unitDir = join(root, "etc/systemd/system");
  mkdirSync(join(unitDir, "plc2mqtt.service.d"), { recursive: true });
  copyFileSync(UNIT_FILE, join(unitDir, "plc2mqtt.service"));
  for (const [file, text] of Object.entries(dropIns)) {
    writeFileSync(join(unitDir, "plc2mqtt.service.d", file), text);
  }
  return root;
}

describe("systemd-analyze security --offline=yes", () => {
  it("scores the unit 2.0 or lower", async () => {
    const result = await run(analyze(), ["security", "--offline=yes", UNIT_FILE]);
    expect(result.stderr).toBe("");
    expect(overallExposure(result.stdout)).toBeLessThanOrEqual(2.0);
  });

  it("scores the unit with the serial-access drop-in 2.0 or lower, above the plain unit", async () => {
    const serial = readFileSync(join(SYSTEMD_DIR, "serial-access.conf"), "utf8");
    const plain = overallExposure(
      (await run(analyze(), ["security", "--offline=yes", UNIT_FILE])).stdout,
    );
    const root = stagedRoot("serial", { "serial-access.conf": serial });
    const result = await run(analyze(), [
      "security",
      "--offline=yes",
      `--root=${root}`,
      "plc2mqtt.service",
    ]);
    expect(result.stderr).toBe("");
    // The drop-in is really applied: the device ACL lists the port.
    expect(result.stdout).toMatch(/DeviceAllow=.*\/dev\/ttyUSB0:rw/);
    const withSerial = overallExposure(result.stdout);
    expect(withSerial).toBeGreaterThan(plain);
    expect(withSerial).toBeLessThanOrEqual(2.0);
  });

  it("flags MemoryDenyWriteExecute as the only memory setting left off (V8's JIT)", async () => {
    const result = await run(analyze(), ["security", "--offline=yes", UNIT_FILE]);
    expect(result.stdout).toMatch(/✗ MemoryDenyWriteExecute=/);
  });

  it("verifies cleanly with the node drop-in install.sh writes", async () => {
    const root = stagedRoot("verify", {
      "10-node.conf": `[Service]\nExecStart=\nExecStart=${process.execPath} /opt/plc2mqtt/lib/node_modules/plc2mqtt/dist/src/main.js run -c /etc/plc2mqtt/gateway.yaml\n`,
    });
    const result = await run(analyze(), [
      "verify",
      join(root, "etc/systemd/system/plc2mqtt.service"),
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
  });
});

describe("point 6: the analyzer tests run wherever systemd-analyze is, in CI or not", () => {
  it("fails with the install hint where systemd-analyze is missing", () => {
    const empty = mkdtempSync(join(tmp, "no-tools-"));
    expect(() => systemdAnalyze(empty)).toThrow(SYSTEMD_ANALYZE_HINT);
  });
});

describe("the unit's settings", () => {
  const unit = readUnit(UNIT_FILE);
  const service = (key: string) => directive(unit, "Service", key);

  it("notifies readiness and is watched", () => {
    expect(service("Type")).toBe("notify");
    // The daemon sends through the systemd-notify binary, a child process.
    expect(service("NotifyAccess")).toBe("all");
    expect(service("WatchdogSec")).toBe("30s");
    expect(service("Restart")).toBe("on-failure");
    expect(service("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
  });

  it("waits longer than the daemon's default 10 s shutdown before killing it", () => {
    const stop = service("TimeoutStopSec") ?? "";
    expect(stop).toMatch(/^\d+s$/);
    expect(Number.parseInt(stop, 10)).toBeGreaterThan(10);
  });

  it("runs the daemon from install.sh's layout with the installed config", () => {
    expect(service("ExecStart")).toBe(
      "/usr/bin/node /opt/plc2mqtt/lib/node_modules/plc2mqtt/dist/src/main.js run -c /etc/plc2mqtt/gateway.yaml",
    );
    expect(service("Environment")).toBe(
      "NODE_ENV=production NODE_COMPILE_CACHE=/var/cache/plc2mqtt",
    );
    expect(service("CacheDirectory")).toBe("plc2mqtt");
  });

  it("hands the MQTT password over as the credential the starter config names", () => {
    expect(service("LoadCredential")).toBe("mqtt_password:/etc/plc2mqtt/credentials/mqtt_password");
    const starter = readFileSync(join(SYSTEMD_DIR, "gateway.yaml"), "utf8");
    expect(starter).toContain("${file:/run/credentials/plc2mqtt.service/mqtt_password}");
  });

  it("keeps MemoryDenyWriteExecute off and says why", () => {
    expect(service("MemoryDenyWriteExecute")).toBeUndefined();
    expect(readFileSync(UNIT_FILE, "utf8")).toMatch(
      /# MemoryDenyWriteExecute= must stay off: V8's JIT/,
    );
  });

  it("makes a filtered system call fail with EPERM rather than kill Node.js", () => {
    expect(service("SystemCallErrorNumber")).toBe("EPERM");
  });
});
