/**
 * The gateway hands the journal no batch larger than `journal.commit_max_events`: a batch is
 * never split across transactions, so a larger one is a longer commit, and the event loop
 * reads no PUBACK and takes no samples while it runs (issue 12: the 10,000 telemetry events an
 * overload released at its end were one commit of 120-190 ms at 10,000 registers).
 *
 * Through the real path (Gateway.start: DriverRunner, engine, event sink, journal) against the
 * bundled simulator: the first poll of 300 registers makes 300 events at once; with
 * commit_max_events 50 every group commit the journal logs holds at most 50.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { startModbusSimulator } from "../../simulators/modbus/index.ts";
import { commitMaxEvents, Gateway } from "../../src/app/gateway.ts";
import { parseConfig } from "../../src/config/load.ts";
import { captureLogger } from "../journal/helpers.ts";
import { eventually } from "../support/resources.ts";

const REGISTERS = 300;
const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-sink-batches-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("appends a poll's events in batches of commit_max_events at most", async () => {
  const sim = await startModbusSimulator({ port: 0 });
  const tags = Array.from(
    { length: REGISTERS },
    (_, a) => `      - { name: r${a}, address: HR${a}, type: uint16 }`,
  );
  const text = `version: 1
gateway: { id: batches-gw, data_dir: ${join(dir, "data")} }
journal: { commit_max_events: 50 }
http: { listen: false }
devices:
  - id: line1
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    poll_interval: 200ms
    tags:
${tags.join("\n")}
`;
  const { config } = parseConfig(text, { file: join(dir, "gateway.yaml"), env: {}, baseDir: dir });
  const capture = captureLogger();
  const gateway = await Gateway.start({ config, log: capture.log, version: "0.0.0-test" });
  try {
    const telemetry = () =>
      gateway.journal
        .query({ device: "line1", limit: 10_000 })
        .filter((r) => /^r\d+$/.test(r.subject));
    await eventually(() => telemetry().length >= REGISTERS, 20_000, "the first poll's events");
    const groups = capture.messages("journal group committed").map((l) => l.events as number);
    expect(groups.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(REGISTERS);
    expect(Math.max(...groups)).toBeLessThanOrEqual(50);
  } finally {
    await gateway.stop();
    await sim.close();
  }
}, 60_000);

it("takes 250 events a commit by default, 1000 when a class is batched, else what is set", () => {
  // unbatched, the publisher's window of single events runs dry while a long commit holds the
  // loop; batched, a window holds many events and fewer, larger commits cost less (issue 12)
  const config = (more: string) =>
    parseConfig(
      `version: 1
gateway: { id: gw, data_dir: ${join(dir, "data")} }
http: { listen: false }
${more}
devices: []
`,
      { file: join(dir, "gateway.yaml"), env: {}, baseDir: dir },
    ).config;
  const broker = `mqtt: { url: "mqtt://127.0.0.1:1883"`;
  expect(commitMaxEvents(config(""))).toBe(250);
  expect(commitMaxEvents(config(`${broker} }`))).toBe(250);
  expect(commitMaxEvents(config(`${broker}, batch: { classes: [telemetry] } }`))).toBe(1000);
  const set = `journal: { commit_max_events: 600 }`;
  expect(commitMaxEvents(config(`${set}\n${broker}, batch: { classes: [telemetry] } }`))).toBe(600);
  expect(commitMaxEvents(config(set))).toBe(600);
});
