/** loadConfig end to end on real files: references, secrets, defaults, error shape. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/errors.ts";
import { loadConfig, parseConfig } from "../../src/config/load.ts";
import { isGatewayError } from "../../src/lib/errors.ts";
import { FIXTURE_DIR, FIXTURE_ENV } from "./fixture-env.ts";

const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HEAD = "version: 1\ngateway:\n  id: edge\n";

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function parse(text: string, env: Record<string, string> = {}) {
  return parseConfig(text, { file: "t.yaml", env, baseDir: dir });
}

function issuesOf(text: string, env: Record<string, string> = {}) {
  try {
    parse(text, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("resolves references, whole and embedded, and applies defaults", async () => {
    const { config, file } = await loadConfig(
      join(FIXTURE_DIR, "valid-references.yaml"),
      FIXTURE_ENV,
    );
    expect(file).toBe(join(FIXTURE_DIR, "valid-references.yaml"));
    expect(config.mqtt?.url).toBe("mqtts://broker.local:8883");
    expect(config.mqtt?.username).toBe("operator-7");
    expect(config.mqtt?.password).toBe("pw-from-file");
    expect(config.mqtt?.keepalive).toBe(30_000);
    expect(config.journal.max_bytes).toBe(1024 ** 3);
    expect(config.http.listen).toBe("127.0.0.1:8787");
    const device = config.devices[0]!;
    expect(device.protocol === "modbus-tcp" && device.host).toBe("broker.local");
    expect(device.poll_interval).toBe(1000);
  });

  it("reads a secret file relative to the config, trimming exactly one trailing newline", async () => {
    write("pw", "line1\nline2\n\n");
    const file = write(
      "gw.yaml",
      `${HEAD}mqtt:\n  url: mqtt://b:1883\n  password: \${file:pw}\n  username: u\n`,
    );
    const { config } = await loadConfig(file, {});
    expect(config.mqtt?.password).toBe("line1\nline2\n");
  });

  it("takes a password from the environment", () => {
    const { config } = parse(
      `${HEAD}mqtt:\n  url: mqtt://b:1883\n  password: \${env:PW}\n  username: u\n`,
      {
        PW: "from-env",
      },
    );
    expect(config.mqtt?.password).toBe("from-env");
  });

  it("refuses a password that is only partly a reference, without showing the secret", () => {
    const issues = issuesOf(
      `${HEAD}mqtt:\n  url: mqtt://b:1883\n  password: x\${env:PW}\n  username: u\n`,
      {
        PW: "from-env",
      },
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: 6, col: 13, path: "mqtt.password" });
    expect(issues[0]!.message).not.toContain("from-env");
  });

  it("redacts resolved values from schema messages", () => {
    const text = `${HEAD}devices:\n  - protocol: modbus-tcp\n    id: p\n    host: h\n    tags:\n      - name: t\n        address: \${env:ADDR}\n`;
    const issues = issuesOf(text, { ADDR: "HR99999" });
    expect(issues.map((i) => `${i.line}:${i.col}: ${i.path}`)).toEqual([
      "10:18: devices[0].tags[0].address",
    ]);
    expect(issues[0]!.message).toContain("${env:ADDR}");
    expect(issues[0]!.message).not.toContain("HR99999");
  });

  it("reports an unknown reference kind and a bad variable name", () => {
    const issues = issuesOf(`${HEAD}  site: \${vault:x}\nmqtt:\n  url: mqtt://\${env:1A}:1883\n`);
    expect(issues.map((i) => `${i.line}:${i.col}: ${i.path}: ${i.message}`)).toEqual([
      '4:9: gateway.site: ${vault:x}: unknown reference kind "vault"; use ${env:NAME} or ${file:/path}',
      "6:8: mqtt.url: ${env:1A}: not a variable name",
    ]);
  });

  it("supports anchors and merge keys for repeated settings", () => {
    const text = `${HEAD}devices:
  - &press
    protocol: modbus-tcp
    id: press-1
    host: h
    poll_interval: 250ms
    tags:
      - { name: speed, address: HR100 }
  - <<: *press
    id: press-2
    host: h2
`;
    const { config } = parse(text);
    expect(config.devices.map((d) => [d.id, d.poll_interval, d.tags.length])).toEqual([
      ["press-1", 250, 1],
      ["press-2", 250, 1],
    ]);
  });

  it("anchors relative paths at the config file's folder, not the working directory", () => {
    const { config } = parseConfig(
      `version: 1
gateway: { id: gw, data_dir: ./state }
mqtt: { url: "mqtts://broker:8883", ca: tls/ca.pem, cert: /etc/tls/client.pem }
devices:
  - protocol: opcua
    id: ua
    endpoint: opc.tcp://h:4840
    auth: { type: certificate, cert: user.pem, key: ../keys/user.key }
    tags: [{ name: a, node: "ns=2;s=A" }]
`,
      { file: "/srv/plant/gateway.yaml", env: {}, baseDir: "/srv/plant" },
    );
    expect(config.gateway.data_dir).toBe("/srv/plant/state");
    expect(config.mqtt).toMatchObject({ ca: "/srv/plant/tls/ca.pem", cert: "/etc/tls/client.pem" });
    expect(config.devices[0]).toMatchObject({
      auth: { cert: "/srv/plant/user.pem", key: "/srv/keys/user.key" },
    });
  });

  it("leaves ${...} without a kind alone", () => {
    const { config } = parse(`${HEAD}  site: \${plant}\n`);
    expect(config.gateway.site).toBe("${plant}");
  });

  it("throws a ConfigError whose message is the whole printable report", () => {
    let caught: unknown;
    try {
      parse("version: 1\ngateway:\n  id: -bad\ncolour: 1\n");
    } catch (err) {
      caught = err;
    }
    expect(isGatewayError(caught, "CONFIG_INVALID")).toBe(true);
    const lines = (caught as Error).message.split("\n");
    expect(lines[0]).toBe("t.yaml: 2 problems");
    expect(lines[1]).toMatch(/^t\.yaml:3:7: gateway\.id: the gateway id must start/);
    expect(lines[2]).toBe('t.yaml:4:1: colour: unknown key "colour"');
  });

  it("reports an empty file at 1:1", () => {
    expect(issuesOf("# nothing\n")).toMatchObject([{ line: 1, col: 1, path: "" }]);
  });

  it("throws CONFIG_READ for a file it cannot read", async () => {
    const missing = join(dir, "absent.yaml");
    await expect(loadConfig(missing, {})).rejects.toSatisfy(
      (err) => isGatewayError(err, "CONFIG_READ") && (err as Error).message.includes(missing),
    );
  });
});
