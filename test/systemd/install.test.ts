/**
 * systemd/install.sh and uninstall.sh against a temp root (--root), up to the point where
 * systemd would start the service: the files, their modes, the unit as shipped plus the node
 * drop-in, the installed CLI running `--version` and `validate` on the installed config with
 * the node the service would use, a second install keeping config and credentials, and
 * uninstall removing what install added while keeping config and state unless --purge.
 *
 * The install runs the real `npm pack` of this checkout (dist/ is built by the global setup)
 * and `npm install -g --prefix` from the npm cache where it can (NPM_CONFIG_PREFER_OFFLINE).
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  directive,
  parseUnit,
  ROOT,
  type RunResult,
  readUnit,
  run,
  SYSTEMD_DIR,
  UNIT_FILE,
} from "./support.ts";

const INSTALL = join(SYSTEMD_DIR, "install.sh");
const UNINSTALL = join(SYSTEMD_DIR, "uninstall.sh");
const NODE = "/opt/node24/bin/node"; // where the test root's Node.js 24 lives
const PKG = "/opt/plc2mqtt/lib/node_modules/plc2mqtt";
const MAIN = `${PKG}/dist/src/main.js`;
const VERSION = (
  JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }
).version;
const ENV = { NPM_CONFIG_PREFER_OFFLINE: "true", NPM_CONFIG_UPDATE_NOTIFIER: "false" };
const SLOW = 180_000;

const tmp = mkdtempSync(join(tmpdir(), "plc2mqtt-install-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A fresh target root with Node.js 24 at /opt/node24/bin/node (a link to this test's node). */
function newRoot(name: string): string {
  const root = join(tmp, name);
  mkdirSync(join(root, "opt/node24/bin"), { recursive: true });
  symlinkSync(process.execPath, join(root, NODE));
  return root;
}

function script(file: string, args: readonly string[]): Promise<RunResult> {
  return run("bash", [file, ...args], { env: ENV, timeoutMs: SLOW });
}

function mode(path: string): string {
  return (statSync(path).mode & 0o7777).toString(8).padStart(4, "0");
}

/** Every path under dir, relative, sorted. */
function listTree(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    out.push(rel);
    if (entry.isDirectory()) out.push(...listTree(dir, rel));
  }
  return out.sort();
}

function expectOk(result: RunResult): void {
  expect(result, `exit ${result.code}\n${result.stderr}${result.stdout}`).toMatchObject({
    code: 0,
  });
}

describe("install.sh --root", () => {
  const root = join(tmp, "main");
  let before: string[] = [];
  let first: RunResult;

  beforeAll(async () => {
    newRoot("main");
    before = listTree(root);
    first = await script(INSTALL, ["--root", root, "--node", NODE]);
  }, SLOW);

  it("installs without calling systemctl", () => {
    expectOk(first);
    expect(first.stdout).toContain("systemctl skipped");
  });

  it("installs the unit exactly as shipped, and a drop-in running the chosen node", () => {
    const unit = join(root, "etc/systemd/system/plc2mqtt.service");
    expect(readFileSync(unit, "utf8")).toBe(readFileSync(UNIT_FILE, "utf8"));
    expect(mode(unit)).toBe("0644");
    const dropIn = join(root, "etc/systemd/system/plc2mqtt.service.d/10-node.conf");
    expect(mode(dropIn)).toBe("0644");
    const execStart = parseUnit(readFileSync(dropIn, "utf8")).get("Service")?.get("ExecStart");
    // The empty assignment resets the unit's ExecStart= before the new one.
    expect(execStart).toEqual(["", `${NODE} ${MAIN} run -c /etc/plc2mqtt/gateway.yaml`]);
  });

  it("puts the package where the unit's ExecStart looks, readable by the service's user", () => {
    const execStart = directive(readUnit(UNIT_FILE), "Service", "ExecStart") ?? "";
    const script = execStart.split(" ")[1] ?? "";
    expect(script).toBe(MAIN);
    expect(existsSync(join(root, script))).toBe(true);
    const unreadable = listTree(join(root, PKG)).filter((rel) => {
      const st = lstatSync(join(root, PKG, rel));
      if (st.isSymbolicLink()) return false;
      return st.isDirectory() ? (st.mode & 0o005) !== 0o005 : (st.mode & 0o004) === 0;
    });
    expect(unreadable).toEqual([]);
  });

  it("installs a CLI wrapper that runs the package with the same node", () => {
    const wrapper = join(root, "usr/local/bin/plc2mqtt");
    expect(mode(wrapper)).toBe("0755");
    expect(readFileSync(wrapper, "utf8")).toContain(`exec ${NODE} ${MAIN} "$@"`);
  });

  it("runs the installed CLI's --version with the service's node", async () => {
    const result = await run(join(root, NODE), [join(root, MAIN), "--version"], { cwd: tmp });
    expectOk(result);
    expect(result.stdout.trim()).toBe(VERSION);
  });

  it("installs a starter config that the installed CLI validates", async () => {
    const config = join(root, "etc/plc2mqtt/gateway.yaml");
    expect(readFileSync(config, "utf8")).toBe(
      readFileSync(join(SYSTEMD_DIR, "gateway.yaml"), "utf8"),
    );
    expect(mode(join(root, "etc/plc2mqtt"))).toBe("0755");
    expect(mode(config)).toBe("0644");
    const result = await run(join(root, NODE), [join(root, MAIN), "validate", "-c", config], {
      cwd: tmp,
    });
    expectOk(result);
    expect(result.stdout).toContain(": ok: gateway edge-01");
  });

  it("point 7: the $schema path of the README and of the starter config exists after install", () => {
    const named = [
      readFileSync(join(ROOT, "README.md"), "utf8"),
      readFileSync(join(SYSTEMD_DIR, "gateway.yaml"), "utf8"),
    ].flatMap((text) => [...text.matchAll(/\$schema=(\/\S+)/g)].map((m) => m[1]!));
    expect(named.length).toBeGreaterThanOrEqual(2);
    for (const path of named) {
      expect(existsSync(join(root, path)), `${path} after install.sh`).toBe(true);
      const schema = JSON.parse(readFileSync(join(root, path), "utf8")) as { title?: string };
      expect(schema.title).toBe("plc2mqtt gateway configuration");
    }
  });

  it("creates a root-only, empty credential for LoadCredential=", () => {
    expect(mode(join(root, "etc/plc2mqtt/credentials"))).toBe("0700");
    const secret = join(root, "etc/plc2mqtt/credentials/mqtt_password");
    expect(mode(secret)).toBe("0600");
    expect(readFileSync(secret, "utf8")).toBe("");
    const load = directive(readUnit(UNIT_FILE), "Service", "LoadCredential");
    expect(load).toBe("mqtt_password:/etc/plc2mqtt/credentials/mqtt_password");
  });

  it("leaves /var/lib to systemd's StateDirectory=", () => {
    expect(existsSync(join(root, "var"))).toBe(false);
  });

  it(
    "is idempotent: a second run restores the unit and keeps config and credentials",
    async () => {
      const config = join(root, "etc/plc2mqtt/gateway.yaml");
      const secret = join(root, "etc/plc2mqtt/credentials/mqtt_password");
      const unit = join(root, "etc/systemd/system/plc2mqtt.service");
      writeFileSync(config, "version: 1\ngateway:\n  id: edited-by-operator\n");
      writeFileSync(secret, "s3cret\n");
      writeFileSync(unit, "[Service]\nExecStart=/bin/false\n");
      expectOk(await script(INSTALL, ["--root", root, "--node", NODE]));
      expect(readFileSync(config, "utf8")).toContain("edited-by-operator");
      expect(readFileSync(secret, "utf8")).toBe("s3cret\n");
      expect(readFileSync(unit, "utf8")).toBe(readFileSync(UNIT_FILE, "utf8"));
      expect(existsSync(join(root, MAIN))).toBe(true);
    },
    SLOW,
  );

  it(
    "uninstall removes the program and keeps config, user drop-ins and state; again is a no-op",
    async () => {
      const state = join(root, "var/lib/private/plc2mqtt");
      mkdirSync(state, { recursive: true });
      writeFileSync(join(state, "journal.sqlite"), "events");
      symlinkSync("private/plc2mqtt", join(root, "var/lib/plc2mqtt"));
      const serial = join(root, "etc/systemd/system/plc2mqtt.service.d/serial-access.conf");
      writeFileSync(serial, readFileSync(join(SYSTEMD_DIR, "serial-access.conf")));

      for (let i = 0; i < 2; i++) {
        const result = await script(UNINSTALL, ["--root", root]);
        expectOk(result);
        expect(existsSync(join(root, "opt/plc2mqtt"))).toBe(false);
        expect(existsSync(join(root, "usr/local/bin/plc2mqtt"))).toBe(false);
        expect(existsSync(join(root, "etc/systemd/system/plc2mqtt.service"))).toBe(false);
        expect(existsSync(join(root, "etc/systemd/system/plc2mqtt.service.d/10-node.conf"))).toBe(
          false,
        );
        expect(existsSync(serial)).toBe(true);
        expect(readFileSync(join(root, "etc/plc2mqtt/gateway.yaml"), "utf8")).toContain(
          "edited-by-operator",
        );
        expect(readFileSync(join(root, "var/lib/plc2mqtt/journal.sqlite"), "utf8")).toBe("events");
      }
    },
    SLOW,
  );

  it(
    "uninstall --purge leaves only what was there before install (and empty folders)",
    async () => {
      expectOk(await script(UNINSTALL, ["--root", root, "--purge"]));
      const left = listTree(root).filter((rel) => !lstatSync(join(root, rel)).isDirectory());
      expect(left).toEqual(before.filter((rel) => !lstatSync(join(root, rel)).isDirectory()));
      expect(existsSync(join(root, "etc/plc2mqtt"))).toBe(false);
      expect(existsSync(join(root, "var/lib/private/plc2mqtt"))).toBe(false);
      expect(existsSync(join(root, "etc/systemd/system/plc2mqtt.service.d"))).toBe(false);
    },
    SLOW,
  );
});

describe("install.sh refuses", () => {
  it("a node the sandbox cannot see (ProtectHome=yes)", async () => {
    const root = newRoot("home-node");
    const result = await script(INSTALL, ["--root", root, "--node", "/root/.nvm/node"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("ProtectHome=yes");
    expect(existsSync(join(root, "opt/plc2mqtt"))).toBe(false);
  });

  it("a node older than 24, naming its version", async () => {
    const root = newRoot("old-node");
    const old = join(root, "usr/bin/node");
    mkdirSync(join(root, "usr/bin"), { recursive: true });
    writeFileSync(old, "#!/bin/sh\necho 20\n", { mode: 0o755 });
    const result = await script(INSTALL, ["--root", root]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("no Node.js 24 at /usr/bin/node");
    const explicit = await script(INSTALL, ["--root", root, "--node", "/usr/bin/node"]);
    expect(explicit.code).toBe(1);
    expect(explicit.stderr).toContain("--node /usr/bin/node is Node.js 20");
  });

  it(
    "to overwrite a /usr/local/bin/plc2mqtt it did not write",
    async () => {
      const root = newRoot("foreign-wrapper");
      mkdirSync(join(root, "usr/local/bin"), { recursive: true });
      writeFileSync(join(root, "usr/local/bin/plc2mqtt"), "#!/bin/sh\necho mine\n", {
        mode: 0o755,
      });
      const result = await script(INSTALL, ["--root", root, "--node", NODE]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("is not plc2mqtt's wrapper");
      expect(readFileSync(join(root, "usr/local/bin/plc2mqtt"), "utf8")).toContain("echo mine");
    },
    SLOW,
  );
});
