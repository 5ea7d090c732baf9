/**
 * Overload by rule (issue 12.2, PRODUCT.md guarantee 8), through the real path: a gateway run
 * in-process (Gateway.start) polls the bundled Modbus simulator every 20 ms while the plant
 * changes 20 telemetry registers every 10 ms, a state, an alarm word, a trigger with a
 * snapshot, and a register whose reads fail now and then (quality events). A real mosquitto
 * is frozen (SIGSTOP: the connection stays up, nothing is acknowledged), so the broker takes
 * events slower than they come, then thawed.
 *
 * With `policy: conflate`: telemetry events carry `data.conflated`, and for every tag the
 * conflated counts of the events delivered add up to exactly the telemetry the engine produced
 * (counted before the overload stage, in plc2mqtt_events_total); every state, alarm, trigger,
 * quality and status event is delivered; per tag, sequences rise, times never go back and each
 * telemetry's `previous` is the value delivered before it; polls keep their schedule; /healthz
 * and the retained health message turn degraded with the reasons and back to ok; /metrics
 * counts the conflation per device. With `policy: keep`: nothing is conflated, the backlog
 * still shows as degraded. With `policy: keep` and a 1 MiB journal: the journal's size policy
 * drops events, health turns degraded with the count and back to ok, and every event that did
 * not arrive is counted by an overflow notice.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ModbusSimulator, startModbusSimulator } from "../../simulators/modbus/index.ts";
import { Gateway } from "../../src/app/gateway.ts";
import { parseConfig } from "../../src/config/load.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { assertValidEvents } from "../support/event-schema.ts";
import { type Broker, type Subscriber, startMosquitto, subscribe } from "../support/mosquitto.ts";
import { eventually } from "../support/resources.ts";
import { scrape } from "./observe-fixture.ts";

const TAGS = Array.from({ length: 20 }, (_, i) => `t${i}`);
const POLL_MS = 20;

interface Doc {
  type: string;
  subject: string;
  sequence: string;
  time: string;
  id: string;
  data: Record<string, unknown>;
}

interface Health {
  status: string;
  degraded: string[];
  reasons: string[];
  overload?: { conflating: boolean; policy: string };
}

interface Plant {
  sim: ModbusSimulator;
  gateway: Gateway;
  url: string;
  base: string;
  events: Subscriber;
  health: Subscriber;
  /** Everything under the base topic (for the journal's overflow notices). */
  all: Subscriber;
  /** Stops the plant changing. */
  calm(): void;
  stop(): Promise<void>;
}

async function startPlant(
  broker: Broker,
  policy: "conflate" | "keep",
  journal = "{ commit_interval: 10ms }",
): Promise<Plant> {
  const sim = await startModbusSimulator({ port: 0 });
  let n = 0;
  const change = () => {
    n++;
    sim.setRegisters(
      1,
      "HR0",
      TAGS.map(() => n & 0xffff),
    );
    sim.setRegisters(1, "HR500", [n & 0xffff]);
    if (n % 10 === 0) {
      sim.setRegisters(1, "HR600", [(n / 10) % 3]); // mode: idle, running, fault
      sim.setRegisters(1, "HR700", [(n / 10) % 4]); // alarm bits 0 and 1
      sim.setBit(1, "C5", (n / 10) % 2 === 1); // the trigger rises every 200 ms
    }
  };
  change();
  let plant: NodeJS.Timeout | undefined = setInterval(change, 10);
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-overload-"));
  const base = `ovl-${Math.random().toString(36).slice(2, 8)}`;
  const text = `version: 1
gateway: { id: ovl-gw, site: testsite, data_dir: ${join(dir, "data")} }
mqtt: { url: "${broker.url}", base_topic: ${base}, keepalive: 5m, reconnect_min: 100ms, reconnect_max: 500ms }
journal: ${journal}
http: { listen: 127.0.0.1:0, health: { topic_interval: 1s } }
overload: { policy: ${policy}, max_pending_events: 500, max_pending_age: 1h, telemetry_interval: 500ms, degraded_for: 2s }
devices:
  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${sim.port}
    poll_interval: ${POLL_MS}ms
    reconnect_min: 100ms
    reconnect_max: 500ms
    tags:
${TAGS.map((t, i) => `      - { name: ${t}, address: HR${i}, type: uint16 }`).join("\n")}
      - { name: flappy, address: HR500, type: uint16 }
      - { name: mode, address: HR600, type: uint16, states: { 0: idle, 1: running, 2: fault } }
      - { name: alarms, address: HR700, type: uint16, alarms: { 0: overheat, 1: jam } }
      - { name: done, address: C5, type: bool,
          trigger: { on: rising, event: cycle.done, snapshot: [t0, t1] } }
`;
  const { config } = parseConfig(text, { file: join(dir, "gateway.yaml"), env: {}, baseDir: dir });
  const events = await subscribe(broker.url, `${base}/testsite/plc/#`);
  const health = await subscribe(broker.url, `${base}/testsite/status/ovl-gw/health`);
  const all = await subscribe(broker.url, `${base}/#`);
  const gateway = await Gateway.start({ config, log: silentLogger(), version: "0.0.0-test" });
  const calm = () => {
    if (plant) clearInterval(plant);
    plant = undefined;
  };
  return {
    sim,
    gateway,
    url: `http://127.0.0.1:${gateway.httpAddress!.port}`,
    base,
    events,
    health,
    all,
    calm,
    stop: async () => {
      calm();
      await gateway.stop();
      await events.close();
      await health.close();
      await all.close();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function healthz(url: string): Promise<Health> {
  return (await (await fetch(`${url}/healthz`)).json()) as Health;
}

/** `plc2mqtt_events_total` (counted before the overload stage): tag -> type -> count. */
async function produced(url: string): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  for (const [key, value] of await scrape(url)) {
    const m = /^plc2mqtt_events_total\{device="plc",tag="([^"]+)",type="([^"]+)"\}$/.exec(key);
    if (!m) continue;
    const byType = out.get(m[1]!) ?? new Map<string, number>();
    byType.set(m[2]!, value);
    out.set(m[1]!, byType);
  }
  return out;
}

/**
 * Freezes the broker until the gateway conflates (or, with keep, is degraded by the backlog)
 * and `until` holds for /healthz, flips a tag's quality meanwhile, thaws it.
 */
async function overload(
  broker: Broker,
  plant: Plant,
  policy: "conflate" | "keep",
  until: (h: Health) => boolean = () => true,
) {
  await eventually(
    async () => (await healthz(plant.url)).status === "ok" && plant.events.messages.length > 100,
    20_000,
    "a gateway that delivers, before the overload",
  );
  // the poll rate this machine gives the gateway now, before the overload: the rate while
  // overloaded is judged against it, not against the clock (a loaded CI machine polls slower)
  plant.sim.clearRequests();
  const baseFrom = Date.now();
  await eventually(() => pollsOf(plant) >= 25, 20_000, "25 polls before the overload");
  const baselinePerMs = pollsOf(plant) / (Date.now() - baseFrom);
  plant.sim.clearRequests();
  const frozenAt = Date.now();
  broker.freeze();
  let during: Health | undefined;
  const metric = async (name: string) => (await scrape(plant.url)).get(name) ?? 0;
  try {
    await eventually(
      async () => {
        during = await healthz(plant.url);
        const slow = during.degraded.some((r) => r.startsWith("the broker takes events slower"));
        return slow && (policy === "keep" || during.overload?.conflating === true) && until(during);
      },
      30_000,
      "the gateway overloaded",
    );
    // quality events while overloaded: reads of HR500 fail, then work again, three times,
    // each time (conflate) while flappy's telemetry is held (all 21 telemetry tags held)
    const flips = () =>
      plant.gateway.journal.query({ subject: "flappy", type: "plc2mqtt.quality.changed" }).length;
    for (let i = 0; i < 3; i++) {
      if (policy === "conflate")
        await eventually(
          async () => (await metric("plc2mqtt_overload_held_tags")) === TAGS.length + 1,
          10_000,
          "every telemetry tag held",
        );
      plant.sim.faults.exception(2, { functionCode: 3, address: 500 });
      await eventually(() => flips() >= 2 * i + 1, 10_000, "flappy going bad");
      plant.sim.faults.clear();
      await eventually(() => flips() >= 2 * i + 2, 10_000, "flappy good again");
    }
    if (policy === "conflate")
      await eventually(
        async () => (await metric('plc2mqtt_telemetry_conflated_total{device="plc"}')) > 2000,
        30_000,
        "2000 changes conflated",
      );
    during = await healthz(plant.url);
  } finally {
    broker.thaw();
  }
  const frozenMs = Date.now() - frozenAt;
  return { during: during!, frozenMs, polls: pollsOf(plant), baselinePerMs };
}

/** Polls of the telemetry block the simulator has answered since its requests were cleared. */
function pollsOf(plant: Plant): number {
  return plant.sim.requests.filter(
    (r) => r.functionCode === 3 && r.address === 0 && r.quantity === TAGS.length,
  ).length;
}

/**
 * Stops the plant and waits until everything journaled reached the subscriber; `exact`: and
 * nothing else (no event the journal dropped was on its way to the broker).
 */
async function settle(plant: Plant, exact = true): Promise<Doc[]> {
  plant.calm();
  // two polls after the last change: the engine produces no more telemetry
  plant.sim.clearRequests();
  await eventually(
    () =>
      plant.sim.requests.filter(
        (r) => r.functionCode === 3 && r.address === 0 && r.quantity === TAGS.length,
      ).length >= 2,
    10_000,
    "two polls after the plant stopped changing",
  );
  await eventually(
    async () => {
      const metrics = await scrape(plant.url);
      const journaled = plant.gateway.journal.query({ device: "plc", limit: 1_000_000 }).length;
      return (
        metrics.get("plc2mqtt_overload_held_tags") === 0 &&
        plant.gateway.queuedEvents === 0 &&
        plant.gateway.journal.stats().pending === 0 &&
        plant.events.messages.length >= journaled
      );
    },
    60_000,
    "every event journaled and delivered",
  );
  const payloads = plant.events.messages.map((m) => m.payload);
  assertValidEvents(payloads);
  const docs = payloads.map((p) => JSON.parse(p) as Doc);
  // every event the journal holds reached the subscriber, once (a frozen broker forces no re-send)
  const journaled = plant.gateway.journal.query({ device: "plc", limit: 1_000_000 });
  const ids = new Set(docs.map((d) => d.id));
  expect(ids.size).toBe(docs.length);
  for (const r of journaled) if (!ids.has(r.id)) throw new Error(`${r.id} not delivered`);
  if (exact) expect(docs.length).toBe(journaled.length);
  return docs;
}

/**
 * Per tag (subject), in the order delivered: sequences rise; times never go back, across types
 * (a Modbus value and a quality change are both dated by their read); each telemetry's
 * `previous` is the value delivered before it; a quality change away from good names as its
 * last good value the value of the telemetry delivered right before it.
 */
function perTagOrder(docs: readonly Doc[]): void {
  const bySubject = new Map<string, Doc[]>();
  for (const d of docs) bySubject.set(d.subject, [...(bySubject.get(d.subject) ?? []), d]);
  for (const [subject, list] of bySubject) {
    let lastTelemetry: Doc | undefined;
    for (let i = 0; i < list.length; i++) {
      const b = list[i]!;
      const a = list[i - 1];
      if (a && !(BigInt(b.sequence) > BigInt(a.sequence)))
        throw new Error(`${subject}: sequence ${b.sequence} after ${a.sequence}`);
      if (a && b.time < a.time)
        throw new Error(`${subject}: ${b.type} at ${b.time} after ${a.type} at ${a.time}`);
      if (b.type === "plc2mqtt.telemetry") {
        if (lastTelemetry && b.data.previous !== lastTelemetry.data.value)
          throw new Error(
            `${subject}: previous ${b.data.previous} after value ${lastTelemetry.data.value}`,
          );
        lastTelemetry = b;
      }
      if (
        b.type === "plc2mqtt.quality.changed" &&
        b.data.previous_quality === "good" &&
        lastTelemetry &&
        b.data.last_good_value !== lastTelemetry.data.value
      )
        throw new Error(
          `${subject}: went ${b.data.quality} with last good value ${b.data.last_good_value}, but the value delivered before is ${lastTelemetry.data.value}`,
        );
    }
  }
}

describe("overload by rule, against a frozen broker", () => {
  let broker: Broker;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    broker?.thaw();
    await broker?.stop();
  });

  describe("policy conflate (the default)", () => {
    let plant: Plant;
    let result: Awaited<ReturnType<typeof overload>>;
    let docs: Doc[];
    let healthAfter: Health;
    beforeAll(async () => {
      plant = await startPlant(broker, "conflate");
      result = await overload(broker, plant, "conflate");
      docs = await settle(plant);
      await eventually(
        async () => {
          healthAfter = await healthz(plant.url);
          return healthAfter.status === "ok";
        },
        20_000,
        "health back to ok",
      );
      const messages = () => plant.health.messages.map((m) => JSON.parse(m.payload) as Health);
      await eventually(
        () =>
          messages().some((m, i) => m.status === "ok" && messages()[i - 1]?.status === "degraded"),
        20_000,
        "a degraded health message, then an ok one",
      );
      if (process.env.OVERLOAD_DEBUG)
        console.log(
          JSON.stringify({ result, events: docs.length, health: messages().map((m) => m.status) }),
        );
    }, 180_000);
    afterAll(async () => {
      await plant?.stop();
    });

    it("accounts for every telemetry change: delivered events plus their conflated counts", async () => {
      const engine = await produced(plant.url);
      const telemetry = docs.filter((d) => d.type === "plc2mqtt.telemetry");
      const folded = telemetry.filter((d) => d.data.conflated !== undefined);
      expect(folded.length).toBeGreaterThan(0);
      for (const d of folded) expect(d.data.conflated as number).toBeGreaterThanOrEqual(2);
      for (const tag of [...TAGS, "flappy"]) {
        const mine = telemetry.filter((d) => d.subject === tag);
        const standsFor = mine.reduce((sum, d) => sum + ((d.data.conflated as number) ?? 1), 0);
        expect({ tag, standsFor }).toEqual({
          tag,
          standsFor: engine.get(tag)?.get("plc2mqtt.telemetry"),
        });
      }
      const metrics = await scrape(plant.url);
      const conflated = metrics.get('plc2mqtt_telemetry_conflated_total{device="plc"}')!;
      const engineTelemetry = [...engine.values()].reduce(
        (sum, m) => sum + (m.get("plc2mqtt.telemetry") ?? 0),
        0,
      );
      expect(conflated).toBe(engineTelemetry - telemetry.length);
      expect(metrics.get("plc2mqtt_overload_conflating")).toBe(0);
      expect(metrics.get("plc2mqtt_overload_held_tags")).toBe(0);
    });

    it("delivers every state, alarm, trigger, quality and status event", async () => {
      const engine = await produced(plant.url);
      let others = 0;
      for (const [tag, byType] of engine) {
        for (const [type, count] of byType) {
          if (type === "plc2mqtt.telemetry") continue;
          others += count;
          const got = docs.filter((d) => d.subject === tag && d.type === type).length;
          expect({ tag, type, got }).toEqual({ tag, type, got: count });
        }
      }
      const types = new Set(docs.map((d) => d.type));
      for (const type of [
        "plc2mqtt.state.changed",
        "plc2mqtt.alarm.changed",
        "plc2mqtt.quality.changed",
        "cycle.done",
      ])
        expect(types).toContain(type);
      expect(others).toBeGreaterThan(50);
      expect(
        docs.filter((d) => d.type === "plc2mqtt.quality.changed" && d.subject === "flappy").length,
      ).toBeGreaterThanOrEqual(6);
    });

    it("keeps per-tag order: sequence, time and the previous-value chain", () => {
      perTagOrder(docs);
    });

    it("keeps polling on schedule while overloaded", () => {
      // polls that waited on the publisher would all but stop while the broker is frozen; a
      // shared machine only slows them as much as before the overload (a floor, not a bench)
      const rate = result.polls / result.frozenMs;
      expect(rate).toBeGreaterThan(0.25 * result.baselinePerMs);
      expect(result.polls).toBeGreaterThan(0.1 * (result.frozenMs / POLL_MS));
    });

    it("turns /healthz and the health message degraded with the reasons, then ok again", () => {
      expect(result.during.status).toBe("degraded");
      expect(result.during.reasons).toEqual([]);
      expect(result.during.degraded.join("\n")).toMatch(
        /^the broker takes events slower than they come: \d+ events wait/m,
      );
      expect(result.during.degraded.join("\n")).toMatch(/^telemetry is conflated now: /m);
      expect(healthAfter).toMatchObject({ status: "ok", degraded: [] });
      const messages = plant.health.messages.map((m) => JSON.parse(m.payload) as Health);
      const degraded = messages.filter((m) => m.status === "degraded");
      expect(degraded.map((m) => m.degraded.join("\n")).join("\n")).toMatch(
        /^telemetry is conflated/m,
      );
      expect(messages.at(-1)?.status).toBe("ok");
    });
  });

  describe("policy keep", () => {
    let plant: Plant;
    let result: Awaited<ReturnType<typeof overload>>;
    let docs: Doc[];
    beforeAll(async () => {
      plant = await startPlant(broker, "keep");
      result = await overload(broker, plant, "keep");
      docs = await settle(plant);
    }, 180_000);
    afterAll(async () => {
      await plant?.stop();
    });

    it("conflates nothing: every telemetry change is its own event", async () => {
      const engine = await produced(plant.url);
      const telemetry = docs.filter((d) => d.type === "plc2mqtt.telemetry");
      expect(telemetry.filter((d) => d.data.conflated !== undefined)).toEqual([]);
      for (const tag of [...TAGS, "flappy"])
        expect(telemetry.filter((d) => d.subject === tag).length).toBe(
          engine.get(tag)?.get("plc2mqtt.telemetry"),
        );
      perTagOrder(docs);
      const metrics = await scrape(plant.url);
      expect(metrics.get('plc2mqtt_telemetry_conflated_total{device="plc"}') ?? 0).toBe(0);
      // the backlog still shows
      expect(result.during.status).toBe("degraded");
      expect(result.during.degraded.join("\n")).not.toMatch(/conflated/);
    });
  });

  describe("policy keep with a journal too small for the backlog", () => {
    let plant: Plant;
    let result: Awaited<ReturnType<typeof overload>>;
    let docs: Doc[];
    let healthAfter: Health;
    const DROPPED = /^the journal's size policy dropped \d+ events in the last 2 s$/m;
    beforeAll(async () => {
      plant = await startPlant(broker, "keep", "{ commit_interval: 10ms, max_bytes: 1MiB }");
      result = await overload(broker, plant, "keep", (h) => DROPPED.test(h.degraded.join("\n")));
      docs = await settle(plant, false);
      await eventually(
        async () => {
          healthAfter = await healthz(plant.url);
          return healthAfter.status === "ok";
        },
        20_000,
        "health back to ok",
      );
    }, 180_000);
    afterAll(async () => {
      await plant?.stop();
    });

    it("turns health degraded by the drops, counts every event lost, then ok again", async () => {
      expect(result.during.status).toBe("degraded");
      expect(result.during.degraded.join("\n")).toMatch(DROPPED);
      expect(healthAfter.degraded).toEqual([]);
      const engine = [...(await produced(plant.url)).values()].reduce(
        (sum, byType) => sum + [...byType.values()].reduce((a, b) => a + b, 0),
        0,
      );
      const notices = plant.all.messages
        .map((m) => JSON.parse(m.payload) as Doc)
        .filter((d) => d.type === "plc2mqtt.journal.overflow");
      const dropped = notices.reduce((sum, d) => sum + (d.data.dropped as number), 0);
      expect(dropped).toBeGreaterThan(0);
      expect(docs.length).toBeLessThan(engine);
      // nothing lost without a count: what did not arrive is counted by an overflow notice
      // (a notice may count an older notice or status event it dropped: at least, not exactly)
      expect(docs.length + dropped).toBeGreaterThanOrEqual(engine);
      const metrics = await scrape(plant.url);
      expect(metrics.get("plc2mqtt_journal_dropped_events_total")).toBeGreaterThanOrEqual(dropped);
    });
  });
});
