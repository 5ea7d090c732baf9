/**
 * Live reload of the built daemon by SIGHUP, against real simulators (one per device) and a
 * real mosquitto: the unchanged device keeps its connection, the added one produces events,
 * the removed one stops, no event is lost or duplicated across the reload, an invalid config
 * is refused with every problem while the old one keeps running, and every reload leaves an
 * audit line saying what changed.
 */
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { deduplicate, isWill, type Received, startSubscriber } from "../e2e/harness.ts";
import { type Broker, startMosquitto } from "../support/mosquitto.ts";
import { type LogLine, startDaemon, waitUntil, writeConfig } from "./support.ts";

function device(id: string, port: number): string {
  return `  - id: ${id}
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    poll_interval: 50ms
    reconnect_min: 100ms
    reconnect_max: 1s
    tags:
      - { name: counter, address: HR0, type: uint16 }
`;
}

describe("config reload on SIGHUP", () => {
  let broker: Broker;
  const sims = new Map<string, ModbusSimulator>();
  let bump: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    broker = await startMosquitto();
    for (const id of ["kept", "removed", "added"])
      sims.set(id, await startModbusSimulator({ port: 0 }));
    let n = 0;
    bump = setInterval(() => {
      n += 1;
      for (const sim of sims.values()) sim.setRegisters(1, "HR0", [n & 0xffff]);
    }, 40);
  });
  afterAll(async () => {
    clearInterval(bump);
    for (const sim of sims.values()) await sim.close();
    await broker?.stop();
  });

  it("applies only the difference, loses and duplicates nothing, refuses a bad config", async () => {
    const sim = (id: string) => sims.get(id)!;
    const base = `reload-${Math.random().toString(36).slice(2, 8)}`;
    let head = "";
    const files = writeConfig((data) => {
      head = `version: 1
gateway: { id: reload-gw, site: s, data_dir: ${data} }
mqtt: { url: "${broker.url}", base_topic: ${base}, reconnect_min: 100ms, reconnect_max: 1s }
journal: { commit_interval: 20ms }
http: { listen: false, health: { topic_interval: false } }
devices:
`;
      return head + device("kept", sim("kept").port) + device("removed", sim("removed").port);
    });
    const sub = await startSubscriber(broker.url, `${base}/#`);
    const daemon = startDaemon(["run", "-c", files.config]);
    const from = (id: string, after = 0) =>
      sub.messages
        .slice(after)
        .filter((m) => m.event.source === `plc2mqtt://reload-gw/${id}` && isTelemetry(m));
    const audits = () => daemon.lines().filter((l) => l.audit === "config reload");
    try {
      await waitUntil(
        () => from("kept").length >= 5 && from("removed").length >= 5,
        20_000,
        "telemetry of both first devices",
      );
      expect(sim("kept").connections).toBe(1);

      // Reload: `removed` goes, `added` comes, `kept` stays as it was.
      writeFileSync(
        files.config,
        head + device("kept", sim("kept").port) + device("added", sim("added").port),
      );
      daemon.child.kill("SIGHUP");
      await waitUntil(() => audits().length === 1, 15_000, "the reload's audit line");
      const removedRequests = sim("removed").requests.length;
      const applied = audits()[0]!;
      expect(applied).toMatchObject({
        level: 30,
        msg: "config reloaded",
        added: ["added"],
        removed: ["removed"],
        changed: [],
        unchanged: ["kept"],
        needsRestart: [],
      });
      const mark = sub.messages.length;
      await waitUntil(() => from("added").length >= 5, 20_000, "telemetry of the added device");
      await waitUntil(() => from("kept", mark).length >= 5, 20_000, "more of the kept device");
      expect(sim("removed").requests.length).toBe(removedRequests); // it is not read any more
      expect(sim("kept").connections).toBe(1); // never reconnected

      // An invalid config is refused; the running one goes on.
      writeFileSync(
        files.config,
        `${head + device("kept", sim("kept").port)}    colour: blue\n${device("added", sim("added").port)}`,
      );
      daemon.child.kill("SIGHUP");
      await waitUntil(() => audits().length === 2, 15_000, "the refusal's audit line");
      const refused = audits()[1]!;
      expect(refused).toMatchObject({
        level: 50,
        msg: "config reload refused; the running config stays",
        file: files.config,
      });
      const problems = refused.problems as string[];
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(new RegExp(`^${files.config}:\\d+:\\d+: devices\\[0\\]`));
      expect(problems[0]).toContain("colour");
      const afterRefusal = sub.messages.length;
      await waitUntil(
        () => from("kept", afterRefusal).length >= 5 && from("added", afterRefusal).length >= 5,
        20_000,
        "events after the refusal",
      );
      expect(sim("kept").connections).toBe(1);

      expect(await daemon.stop()).toBe(0);
      await waitUntil(
        () => sub.messages.some((m) => isStatus(m, "offline")),
        10_000,
        "the clean offline status",
      );
    } finally {
      await daemon.kill();
      await sub.close();
    }

    // The consumer's view of the whole run: every sequence number once, no gap.
    const stream = sub.messages.filter((m) => !isWill(m));
    expect(deduplicate(stream)).toHaveLength(stream.length);
    const sequences = stream.map((m) => BigInt(m.event.sequence));
    for (let i = 1; i < sequences.length; i++) expect(sequences[i]).toBe(sequences[i - 1]! + 1n);
    // The removed device stopped before the added one started.
    const last = (id: string) => sequenceOf(stream, id, Math.max);
    const first = (id: string) => sequenceOf(stream, id, Math.min);
    expect(last("removed")).toBeLessThan(first("added"));
    // Nothing but the audit lines and a handful of others at info: no line per poll.
    expect(daemon.lines().filter((l: LogLine) => l.level >= 30).length).toBeLessThan(25);
  });
});

function isTelemetry(m: Received): boolean {
  return m.event.type === "plc2mqtt.telemetry";
}

function isStatus(m: Received, status: string): boolean {
  return m.event.type === "plc2mqtt.gateway.status" && m.event.data.status === status;
}

function sequenceOf(
  stream: readonly Received[],
  id: string,
  pick: (...n: number[]) => number,
): number {
  const own = stream.filter((m) => m.event.source === `plc2mqtt://reload-gw/${id}`);
  if (own.length === 0) throw new Error(`no events of ${id}`);
  return pick(...own.map((m) => Number(m.event.sequence)));
}
