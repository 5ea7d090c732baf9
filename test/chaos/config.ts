/**
 * The chaos tests' gateway: REGISTERS uint16 tags r<a> on HR<a> of the Modbus simulator, polled
 * every 50 ms (the test changes all of them every 20 ms, so REGISTERS x 20 events/s), fast
 * reconnects, gateway id e2e-gw (what test/e2e/harness.ts's journalRecords opens).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ModbusSimulator } from "../../simulators/modbus/types.ts";

export function writeChaosConfig(
  simPort: number,
  brokerUrl: string,
  registers: number,
  dataDir?: string,
): { base: string; config: string; dataDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-chaos-"));
  const base = `chaos-${Math.random().toString(36).slice(2, 8)}`;
  const data = dataDir ?? join(dir, "data");
  const config = join(dir, "gateway.yaml");
  const tags = chaosTags(registers);
  writeFileSync(
    config,
    `version: 1
gateway: { id: e2e-gw, site: chaos, data_dir: ${data} }
mqtt: { url: "${brokerUrl}", base_topic: ${base}, reconnect_min: 50ms, reconnect_max: 500ms, max_in_flight: 200 }
journal: { commit_interval: 20ms }
http: { listen: false, health: { topic_interval: false } }
devices:
  - id: plc
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${simPort}
    poll_interval: 50ms
    reconnect_min: 50ms
    reconnect_max: 500ms
    tags:
${tags.join("\n")}
`,
  );
  return { base, config, dataDir: data };
}

/** The YAML tag lines of `registers` uint16 tags r<a> on HR<a> (a device's `tags:` list). */
export function chaosTags(registers: number): string[] {
  return Array.from(
    { length: registers },
    (_, a) => `      - { name: r${a}, address: HR${a}, type: uint16 }`,
  );
}

/** The plant of the chaos tests: every `everyMs` the tick goes up and r<a> holds tick + a. */
export interface Changing {
  /** The last tick written. */
  readonly tick: number;
  stop(): void;
}

/** Starts changing every register at `from + 1`, `from + 2`, ... (see lastReadingArrived). */
export function startChanging(
  sim: Pick<ModbusSimulator, "setRegisters">,
  registers: number,
  everyMs: number,
  from = 0,
): Changing {
  let tick = from;
  const timer = setInterval(() => {
    tick++;
    sim.setRegisters(
      1,
      "HR0",
      Array.from({ length: registers }, (_, a) => (tick + a) & 0xffff),
    );
  }, everyMs);
  return {
    get tick() {
      return tick;
    },
    stop: () => clearInterval(timer),
  };
}

/** The value register r0 holds at `tick` (the tests write (tick + a) & 0xffff into r<a>). */
export function lastReadingArrived(
  messages: readonly { event: { subject: string; data: Record<string, unknown> } }[],
  tick: number,
): boolean {
  const want = tick & 0xffff;
  for (let i = messages.length - 1; i >= 0; i--) {
    const e = messages[i]!.event;
    if (e.subject === "r0" && e.data.value === want) return true;
  }
  return false;
}
