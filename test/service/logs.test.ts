/**
 * The daemon's logs, from the built CLI: JSON lines on stdout, quiet at info, --log-level and
 * --log-format (pretty on a terminal by default), secrets never in a line even at debug, and a
 * dead PLC that does not flood the log (the same warning at most once per interval, with the
 * count of repeats held back). The logger's redaction and throttle are also checked directly.
 */
import { spawn } from "node:child_process";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { RepeatThrottle } from "../../src/lib/log-throttle.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { CLI, ROOT } from "../support/cli.ts";
import { createPasswordFile, freePort, startMosquitto } from "../support/mosquitto.ts";
import { which } from "../systemd/support.ts";
import { type Daemon, type LogLine, startDaemon, waitUntil, writeConfig } from "./support.ts";

function modbusDevice(id: string, port: number): string {
  return `  - id: ${id}
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    poll_interval: 50ms
    reconnect_min: 10ms
    reconnect_max: 100ms
    tags:
      - { name: counter, address: HR0, type: uint16 }
`;
}

function gatewayConfig(devices: string, mqtt = ""): string {
  return writeConfig(
    (data) => `version: 1
gateway: { id: logs-gw, data_dir: ${data} }
${mqtt}journal: { commit_interval: 20ms }
http: { listen: false }
devices:
${devices}`,
  ).config;
}

/** Waits for `done`, then stops the daemon with SIGTERM: it must exit 0. */
async function runUntil(daemon: Daemon, done: () => boolean, what: string): Promise<void> {
  try {
    await waitUntil(done, 20_000, what);
    expect(await daemon.stop()).toBe(0);
  } finally {
    await daemon.kill();
  }
}

const messages = (lines: readonly LogLine[], msg: string) => lines.filter((l) => l.msg === msg);

describe("daemon logs", () => {
  let sim: ModbusSimulator;
  let bump: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    sim = await startModbusSimulator({ port: 0 });
    let n = 0;
    bump = setInterval(() => sim.setRegisters(1, "HR0", [++n & 0xffff]), 20);
  });
  afterAll(async () => {
    clearInterval(bump);
    await sim?.close();
  });

  it("is quiet at info (no line per poll), says more at debug, only problems at warn", async () => {
    const config = gatewayConfig(modbusDevice("plc", sim.port));
    const run = async (level: string) => {
      const daemon = startDaemon(["run", "-c", config, "--log-level", level]);
      const from = sim.requests.length;
      // 40 polls, each of a changed value: 40 telemetry events
      await runUntil(daemon, () => sim.requests.length >= from + 40, "40 polls");
      return daemon.lines();
    };

    const info = await run("info");
    expect(info.every((l) => l.level >= 30)).toBe(true);
    expect(messages(info, "gateway started")).toHaveLength(1);
    expect(messages(info, "device connected")).toHaveLength(1);
    expect(info.length).toBeLessThanOrEqual(12);

    const debug = await run("debug");
    expect(debug.some((l) => l.level === 20)).toBe(true);
    expect(debug.length).toBeGreaterThan(info.length);

    const warn = await run("warn");
    expect(warn.every((l) => l.level >= 40)).toBe(true);

    const bad = startDaemon(["run", "-c", config, "--log-level", "chatty"]);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toContain("chatty");
  });

  it("pretty when asked, and by default on a terminal; JSON on a pipe", async () => {
    const config = gatewayConfig(modbusDevice("plc", sim.port));
    const pretty = startDaemon(["run", "-c", config, "--log-format", "pretty"]);
    await runUntil(pretty, () => pretty.stdout().includes("device connected"), "pretty lines");
    const lines = pretty.stdout().split("\n").filter(Boolean);
    expect(lines.some((l) => /INFO.*gateway started/.test(l))).toBe(true);
    for (const line of lines) expect(() => JSON.parse(line)).toThrow();

    // On a terminal (util-linux `script` gives it one), auto means pretty.
    if (!which("script")) throw new Error("script is missing: apt-get install -y bsdutils");
    const command = `exec ${JSON.stringify(process.execPath)} ${CLI} run -c ${config}`;
    const tty = spawn("script", ["-qec", command, "/dev/null"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    tty.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => tty.once("exit", resolve));
    try {
      await waitUntil(() => out.includes("device connected"), 20_000, "lines on the terminal");
    } finally {
      tty.kill("SIGTERM"); // script passes it on to the daemon
      await exited;
    }
    expect(out).toMatch(/INFO.*gateway started/);
    expect(out).not.toContain('"msg":"gateway started"');
  });

  it("never logs the MQTT password, even at debug, while the refusal is logged", async () => {
    const password = "Wr0ng-pa55word-7f3a9c";
    const broker = await startMosquitto({
      passwordFile: createPasswordFile("gw", "the-right-password"),
    });
    try {
      const config = gatewayConfig(
        modbusDevice("plc", sim.port),
        `mqtt: { url: "${broker.url}", username: gw, password: "\${env:LOGS_TEST_MQTT_PASSWORD}", reconnect_min: 100ms, reconnect_max: 200ms }\n`,
      );
      const daemon = startDaemon(["run", "-c", config, "--log-level", "debug"], {
        env: { LOGS_TEST_MQTT_PASSWORD: password },
      });
      await runUntil(
        daemon,
        () => messages(daemon.lines(), "MQTT connect failed").length > 0,
        "the connect failure",
      );
      const failure = messages(daemon.lines(), "MQTT connect failed")[0]!;
      expect(JSON.stringify(failure)).toMatch(/not authori[sz]ed|bad user name or password/i);
      expect(daemon.stdout() + daemon.stderr()).not.toContain(password);
      expect(daemon.stdout()).not.toContain("pa55word");
    } finally {
      await broker.stop();
    }
  });

  it("a dead PLC logs its connect failure at most once per interval, counting the repeats", async () => {
    const dead = [await freePort(), await freePort()];
    const config = gatewayConfig(
      modbusDevice("dead-1", dead[0]!) + modbusDevice("dead-2", dead[1]!),
    );
    const started = Date.now();
    const daemon = startDaemon(["run", "-c", config, "--log-repeat-interval", "500"]);
    const failures = (device: string) =>
      messages(daemon.lines(), "device connect failed").filter((l) => l.device === device);
    const counted = (device: string) => failures(device).some((l) => Number(l.suppressed) > 0);
    await runUntil(daemon, () => counted("dead-1") && counted("dead-2"), "counted repeats");
    const elapsed = Date.now() - started;
    for (const device of ["dead-1", "dead-2"]) {
      const lines = failures(device);
      expect(lines[0]!.level).toBe(40);
      expect(lines[0]!.suppressed).toBeUndefined();
      // at most one line per started interval of the run
      expect(lines.length).toBeLessThanOrEqual(1 + Math.ceil(elapsed / 500));
      const attempts = lines.reduce((sum, l) => sum + 1 + Number(l.suppressed ?? 0), 0);
      expect(attempts).toBeGreaterThan(lines.length);
    }
  });
});

describe("daemon logs across broker outages", () => {
  it("point 7: every broker outage logs its warning, even a few seconds after the previous one (the once-a-minute limiter)", async () => {
    const sim = await startModbusSimulator({ port: 0 });
    const broker = await startMosquitto();
    try {
      const config = writeConfig(
        (data) => `version: 1
gateway: { id: logs-gw, data_dir: ${data} }
mqtt: { url: "${broker.url}", reconnect_min: 100ms, reconnect_max: 300ms }
journal: { commit_interval: 20ms }
http: { listen: "127.0.0.1:0" }
devices:
${modbusDevice("plc", sim.port)}`,
      ).config;
      // the default --log-repeat-interval: 60 s
      const daemon = startDaemon(["run", "-c", config]);
      try {
        await waitUntil(
          () => messages(daemon.lines(), "serving /healthz and /metrics").length > 0,
          20_000,
          "the HTTP endpoint",
        );
        const url = String(messages(daemon.lines(), "serving /healthz and /metrics")[0]!.url);
        const mqttConnected = async () => {
          const res = await fetch(`${url}/healthz`);
          const body = (await res.json()) as { mqtt?: { connected: boolean } };
          return body.mqtt?.connected === true;
        };
        const waitFor = async (connected: boolean, what: string) => {
          const deadline = Date.now() + 20_000;
          while ((await mqttConnected()) !== connected) {
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        };
        await waitFor(true, "the first connection");
        const OUTAGES = 3;
        for (let i = 1; i <= OUTAGES; i++) {
          await broker.stop();
          await waitFor(false, `outage ${i} noticed`);
          await broker.start();
          await waitFor(true, `connected after outage ${i}`);
        }
        expect(await daemon.stop()).toBe(0);
        const lost = messages(daemon.lines(), "MQTT connection lost");
        expect(lost.map((l) => l.level)).toEqual(Array(OUTAGES).fill(40));
      } finally {
        await daemon.kill();
      }
    } finally {
      await broker.stop();
      await sim.close();
    }
  });
});

describe("logger", () => {
  const capture = () => {
    const chunks: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        chunks.push(String(chunk));
        done();
      },
    });
    return { destination, text: () => chunks.join("") };
  };

  it("cuts resolved secrets out of every line, wherever they sit", () => {
    const out = capture();
    const secret = 'pa"ss\\word-123';
    const log = createLogger({ destination: out.destination, secrets: new Set([secret, "ab"]) });
    log.info({ mqtt: { password: "other-pass-1" } }, "config");
    log.warn({ url: `mqtt://gw:${secret}@broker:1883` }, "connect failed");
    log.error({ err: new Error(`refused for ${secret}`) }, "MQTT connect failed");
    const text = out.text();
    expect(text).not.toContain("other-pass-1");
    expect(text).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(text).toContain("[redacted]");
    expect(text).toContain("refused for [redacted]");
    // too short to cut without mangling lines: left to path redaction
    expect(text).toContain("broker");
  });

  it("throttles repeated warnings per message and device, never audit lines", () => {
    const out = capture();
    const log = createLogger({ destination: out.destination, repeatIntervalMs: 60_000 });
    const a = log.child({ device: "a" });
    for (let i = 0; i < 5; i++) a.warn({ retryInMs: i }, "device connect failed");
    log.warn({ device: "b" }, "device connect failed");
    for (let i = 0; i < 3; i++) log.info({ audit: "config reload" }, "config reloaded");
    for (let i = 0; i < 3; i++) log.info({}, "device connected");
    const lines = out
      .text()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as LogLine);
    expect(messages(lines, "device connect failed").map((l) => l.device)).toEqual(["a", "b"]);
    expect(messages(lines, "config reloaded")).toHaveLength(3);
    expect(messages(lines, "device connected")).toHaveLength(3);
  });

  const linesOf = (text: string) =>
    text
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogLine);

  it("point 7: the limiter keys on the tag: six tags that do not resolve are six warnings", () => {
    const out = capture();
    const log = createLogger({ destination: out.destination, repeatIntervalMs: 60_000 });
    const driver = log.child({ part: "driver", device: "ua" });
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < 6; i++) driver.warn({ tag: `t${i}` }, "OPC UA tag unresolved");
    const lines = messages(linesOf(out.text()), "OPC UA tag unresolved");
    expect(lines.map((l) => l.tag)).toEqual(["t0", "t1", "t2", "t3", "t4", "t5"]);
  });

  it("point 7: the first warning of a new outage passes: a source that logged it connected starts over, also at level warn", () => {
    for (const level of ["info", "warn"]) {
      const out = capture();
      const log = createLogger({ level, destination: out.destination, repeatIntervalMs: 60_000 });
      const publish = log.child({ part: "publish" });
      const plc = log.child({ part: "driver", device: "plc" });
      publish.warn({}, "MQTT connection lost");
      publish.warn({}, "MQTT connection lost"); // a repeat in the same outage: held back
      plc.info({}, "device connected"); // another source: the broker outage is not over
      publish.warn({}, "MQTT connection lost");
      publish.info({}, "MQTT connected");
      publish.warn({}, "MQTT connection lost"); // the next outage: its first warning
      const lines = linesOf(out.text());
      const lost = messages(lines, "MQTT connection lost");
      expect(
        lost.map((l) => l.suppressed),
        level,
      ).toEqual([undefined, 2]);
      expect(messages(lines, "MQTT connected"), level).toHaveLength(level === "info" ? 1 : 0);
    }
  });

  it("point 7: a driver's line carries device once, though the runner's child logger binds it too", () => {
    const out = capture();
    for (const repeatIntervalMs of [0, 60_000]) {
      const log = createLogger({ destination: out.destination, repeatIntervalMs });
      const runner = log.child({ part: "driver", device: "press-1" });
      runner.warn({ device: "press-1", tag: "t", reason: "x" }, "OPC UA tag unresolved");
      runner.debug({ device: "press-1" }, "not written at info");
      runner.info({ device: "other" }, "device named differently: kept");
    }
    const raw = out.text().trim().split("\n");
    expect(raw).toHaveLength(4);
    for (const line of raw)
      expect(line.match(/"device":/g)).toHaveLength(line.includes("other") ? 2 : 1);
    expect(linesOf(out.text())[0]).toMatchObject({ device: "press-1", tag: "t", reason: "x" });
  });

  it("RepeatThrottle: a source that recovered starts over, with the count held back", () => {
    const t = new RepeatThrottle({ intervalMs: 1000 });
    expect(t.check("lost", 0, "publish")).toBe(0);
    expect(t.check("lost", 10, "publish")).toBe(false);
    t.recovered("driver:plc");
    expect(t.check("lost", 20, "publish")).toBe(false);
    t.recovered("publish");
    expect(t.check("lost", 20, "publish")).toBe(2);
    expect(t.check("lost", 30, "publish")).toBe(false);
  });

  it("RepeatThrottle: once per window, then the count of what it held back", () => {
    const t = new RepeatThrottle({ intervalMs: 100, maxKeys: 2 });
    expect(t.check("k", 0)).toBe(0);
    expect(t.check("k", 50)).toBe(false);
    expect(t.check("k", 99)).toBe(false);
    expect(t.check("other", 99)).toBe(0);
    expect(t.check("k", 100)).toBe(2);
    expect(t.check("k", 150)).toBe(false);
    expect(t.check("k", 300)).toBe(1);
    expect(t.check("k", 400)).toBe(0);
    t.check("x", 400);
    t.check("y", 401);
    expect(t.size).toBeLessThanOrEqual(2);
  });
});
