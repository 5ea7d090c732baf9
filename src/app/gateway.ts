/**
 * The composition root of the daemon: builds and wires the parts, starts and stops them in
 * order.
 *
 * Start: journal (so nothing produced is ever without a home), engine, publisher, then the
 * device runners. Stop, each step bounded: runners stop (no new samples), the engine's held
 * values are flushed, queued events are committed, the publisher finishes what is in flight and
 * replaces its last will with a clean offline status, the journal commits and closes.
 */
import type { DeviceConfig, GatewayConfig } from "../config/schema/root.ts";
import { createDriver } from "../drivers/registry.ts";
import type { TagSample } from "../drivers/types.ts";
import { createEngine, type Engine, engineDeviceFromConfig } from "../engine/index.ts";
import type { GatewayEvent } from "../events/types.ts";
import { openJournal } from "../journal/index.ts";
import type { Journal } from "../journal/types.ts";
import { withTimeout } from "../lib/abort.ts";
import type { Logger } from "../lib/logger.ts";
import { Publisher } from "../publish/index.ts";
import { type DeviceStatus, DriverRunner } from "./driver-runner.ts";
import { EventSink } from "./event-sink.ts";
import { diffConfigs, type ReloadReport } from "./reload-diff.ts";
import { createRender } from "./render.ts";
import { deviceStatusEvent, gatewayStatusEvents } from "./status-events.ts";

export interface GatewayOptions {
  config: GatewayConfig;
  log: Logger;
  version: string;
  now?: () => number;
}

export class Gateway {
  readonly journal: Journal;
  readonly publisher: Publisher | undefined;
  private readonly log: Logger;
  private readonly engine: Engine;
  private readonly sink: EventSink;
  private readonly runners = new Map<string, DriverRunner>();
  private config: GatewayConfig;
  private reloading: Promise<unknown> = Promise.resolve();
  private lastPublished = 0;
  private lastProgress = 0;
  private readonly now: () => number;
  private tickTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(options: GatewayOptions, journal: Journal, engine: Engine) {
    const { config, log } = options;
    this.log = log;
    this.config = config;
    this.now = options.now ?? Date.now;
    this.journal = journal;
    this.engine = engine;
    this.sink = new EventSink({ journal, log: log.child({ part: "sink" }) });
    if (config.mqtt) {
      const render = createRender(config);
      this.publisher = new Publisher({
        journal,
        mqtt: config.mqtt,
        clientId: config.mqtt.client_id ?? `plc2mqtt-${config.gateway.id}`,
        status: gatewayStatusEvents(
          {
            gatewayId: config.gateway.id,
            ...(config.gateway.site === undefined ? {} : { site: config.gateway.site }),
            version: options.version,
            startedAt: this.now(),
            now: this.now,
          },
          render,
        ),
        log: log.child({ part: "publish" }),
      });
    }
  }

  /** Opens the journal and starts every part; throws when the journal cannot be opened. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const { config, log } = options;
    const engineDevices = config.devices.map((d) => engineDeviceFromConfig(d, config.gateway.site));
    const engine = createEngine(engineDevices);
    const journal = await openJournal({
      dir: config.gateway.data_dir,
      gatewayId: config.gateway.id,
      maxBytes: config.journal.max_bytes,
      retentionMs: config.journal.retention,
      commitIntervalMs: config.journal.commit_interval,
      commitMaxEvents: config.journal.commit_max_events,
      render: createRender(config),
      log: log.child({ part: "journal" }),
    });
    const gateway = new Gateway(options, journal, engine);
    gateway.publisher?.start();
    for (const device of config.devices) gateway.startDevice(device);
    // starts the staleness clock of devices that never deliver a sample
    gateway.emit(engine.tick(gateway.now()));
    gateway.scheduleTick();
    log.info({ devices: config.devices.length, epoch: journal.epoch }, "gateway started");
    return gateway;
  }

  private startDevice(device: DeviceConfig): void {
    const asset = engineDeviceFromConfig(device, this.config.gateway.site).asset;
    const runner = new DriverRunner({
      driver: createDriver(device),
      log: this.log.child({ part: "driver", device: device.id }),
      onSamples: (samples) => this.onSamples(samples),
      onStatus: (status) => this.onStatus(device.id, asset, status),
      reconnect: { minMs: device.reconnect_min, maxMs: device.reconnect_max },
    });
    this.runners.set(device.id, runner);
    runner.start();
  }

  /**
   * Live reload: applies only the difference in devices. Unchanged devices keep their
   * connections and engine state; removed ones stop; added ones start; a changed one restarts.
   * The journal and the MQTT session stay: changes outside `devices` need a restart and are
   * reported as such. Reloads run one at a time.
   */
  reload(next: GatewayConfig): Promise<ReloadReport> {
    const run = this.reloading.then(() => this.applyReload(next));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async applyReload(next: GatewayConfig): Promise<ReloadReport> {
    const report = diffConfigs(this.config, next);
    const restart = [...report.removed, ...report.changed];
    await Promise.all(restart.map((id) => this.runners.get(id)?.stop()));
    for (const id of restart) this.runners.delete(id);
    const starting = next.devices.filter(
      (d) => report.added.includes(d.id) || report.changed.includes(d.id),
    );
    this.engine.setDevices(
      starting.map((d) => engineDeviceFromConfig(d, this.config.gateway.site)),
      new Set(report.unchanged),
    );
    this.config = { ...this.config, devices: next.devices };
    for (const device of starting) this.startDevice(device);
    this.log.info({ audit: "config reload", ...report }, "config reloaded");
    return report;
  }

  /**
   * For the watchdog: false when the publisher is connected, has records waiting, and has
   * had no PUBACK for `stuckMs` (a publisher making no progress). A blocked event loop needs no
   * check: it cannot run this at all.
   */
  alive(stuckMs: number): boolean {
    const stats = this.publisher?.stats();
    const now = this.now();
    if (
      !stats?.connected ||
      this.journal.stats().pending === 0 ||
      stats.published !== this.lastPublished
    ) {
      this.lastPublished = stats?.published ?? 0;
      this.lastProgress = now;
      return true;
    }
    return now - this.lastProgress < stuckMs;
  }

  /** Events waiting to be journaled (for health and tests). */
  get queuedEvents(): number {
    return this.sink.queued;
  }

  private emit(events: GatewayEvent[]): void {
    this.sink.push(events);
  }

  private onSamples(samples: TagSample[]): void {
    this.emit(this.engine.apply(samples, this.now()));
    this.scheduleTick();
  }

  private onStatus(device: string, asset: GatewayEvent["asset"], status: DeviceStatus): void {
    this.emit([deviceStatusEvent(device, asset, status, this.now())]);
  }

  /** Runs the engine's tick when it is next due (heartbeats, staleness, held values). */
  private scheduleTick(): void {
    if (this.stopping) return;
    const due = this.engine.nextDue();
    if (due === undefined) return;
    const delay = Math.max(0, Math.min(due - this.now(), 60_000));
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = setTimeout(() => {
      this.tickTimer = undefined;
      this.emit(this.engine.tick(this.now()));
      this.scheduleTick();
    }, delay);
  }

  /** Ordered, bounded shutdown; idempotent. */
  stop(timeoutMs = 10_000): Promise<void> {
    this.stopping ??= this.shutdown(timeoutMs);
    return this.stopping;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    const deadline = this.now() + timeoutMs;
    const left = () => Math.max(100, deadline - this.now());
    const step = async (name: string, work: () => Promise<void>) => {
      try {
        await withTimeout(work(), left(), () => new Error(`${name} did not finish in time`));
      } catch (err) {
        this.log.warn({ err, step: name }, "shutdown step failed");
      }
    };
    if (this.tickTimer) clearTimeout(this.tickTimer);
    await this.reloading;
    await step("drivers", async () => {
      await Promise.all([...this.runners.values()].map((r) => r.stop()));
    });
    this.emit(this.engine.flush(this.now()));
    await step("journal appends", () => this.sink.stop(left()));
    if (this.publisher) await step("publisher", () => this.publisher!.stop(left()));
    await step("journal", () => this.journal.close());
    this.log.info({}, "gateway stopped");
  }
}
