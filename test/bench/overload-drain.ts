/**
 * A measurement, not a test (issue 12.2): how a backlog left by a broker outage drains while
 * the plant keeps changing, with overload policy conflate (the default limits) and keep. The
 * in-process gateway polls TAGS registers of the bundled Modbus simulator every POLL ms, all
 * changing every POLL ms; mosquitto is stopped for OUTAGE s, then started. Printed per second
 * after the restart: events published, the journal's pending, telemetry produced by the engine
 * and journaled (the live intake). Run: node test/bench/overload-drain.ts [conflate|keep]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startModbusSimulator } from "../../simulators/modbus/index.ts";
import { Gateway } from "../../src/app/gateway.ts";
import { parseConfig } from "../../src/config/load.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { startMosquitto } from "../support/mosquitto.ts";

const policy = process.argv[2] === "keep" ? "keep" : "conflate";
const TAGS = Number(process.env.TAGS ?? 100);
const POLL = Number(process.env.POLL ?? 20);
const OUTAGE = Number(process.env.OUTAGE ?? 10);

const broker = await startMosquitto();
const sim = await startModbusSimulator({ port: 0, recordRequests: false });
let n = 0;
const plant = setInterval(() => {
  n++;
  sim.setRegisters(
    1,
    "HR0",
    Array.from({ length: TAGS }, () => n & 0xffff),
  );
}, POLL);
const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-drain-"));
const text = `version: 1
gateway: { id: drain-gw, data_dir: ${join(dir, "data")} }
mqtt: { url: "${broker.url}", max_in_flight: 1000, reconnect_min: 100ms, reconnect_max: 200ms }
http: { listen: false }
overload: { policy: ${policy} }
devices:
  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    poll_interval: ${POLL}ms
    max_registers_per_request: 125
    tags:
${Array.from({ length: TAGS }, (_, i) => `      - { name: t${i}, address: HR${i}, type: uint16 }`).join("\n")}
`;
const { config } = parseConfig(text, { file: join(dir, "g.yaml"), env: {}, baseDir: dir });
const gateway = await Gateway.start({ config, log: silentLogger(), version: "bench" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const produced = async () => {
  const text = (await gateway.metrics.registry.getSingleMetricAsString("plc2mqtt_events_total"))
    .split("\n")
    .filter((l) => l.includes('type="plc2mqtt.telemetry"'));
  return text.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
};
const journaled = () => Number(gateway.journal.stats().lastSequence);
await sleep(3000);
await broker.stop();
await sleep(OUTAGE * 1000);
await broker.start();
const rows: string[] = [];
let last = {
  at: Date.now(),
  published: gateway.publisher!.stats().published,
  produced: await produced(),
  journaled: journaled(),
};
for (let s = 0; s < 30; s++) {
  await sleep(1000);
  const now = {
    at: Date.now(),
    published: gateway.publisher!.stats().published,
    produced: await produced(),
    journaled: journaled(),
  };
  const secs = (now.at - last.at) / 1000;
  const pending = gateway.journal.stats().pending;
  const rate = (k: "published" | "produced" | "journaled") => Math.round((now[k] - last[k]) / secs);
  rows.push(
    `${policy}\t${s + 1}\t${rate("published")}\t${pending}\t${rate("produced")}\t${rate("journaled")}\t${gateway.health().status}`,
  );
  last = now;
  if (pending < 1000 && s > 5) break;
}
console.log("policy\ts\tpublished/s\tpending\tproduced/s\tjournaled/s\thealth");
console.log(rows.join("\n"));
clearInterval(plant);
await gateway.stop();
await sim.close();
await broker.stop();
rmSync(dir, { recursive: true, force: true });
rmSync(broker.dir, { recursive: true, force: true });
