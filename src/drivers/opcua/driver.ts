/**
 * The OPC UA driver: subscriptions with monitored items by default, batched reads for tags in
 * poll mode (and for commissioning reads of any tag).
 *
 * Invariants:
 * - The constructor does no I/O and does not load node-opcua; connect() loads it (once per
 *   process), opens the session and resolves every tag (nsu= ids, browse paths, data types)
 *   afresh, so a restarted or renumbered server never needs a gateway restart.
 * - read() never throws for a failed request: the tags it covers come back bad with the reason.
 *   Only an abort is thrown. Reads are split to fit MaxNodesPerRead.
 * - subscribe() creates the subscription after each connect; when the connection is lost, every
 *   subscribed tag gets one bad sample with the reason (the runner marks poll tags), and
 *   `connected` turns false so the runner reconnects and subscribes again: fresh values then
 *   come back good. An unresolvable tag is bad with its reason; the others work. So is a tag
 *   whose configured type does not fit its variable's DataType and ValueRank (resolve.ts,
 *   logged once per driver with both types), and each value that does not fit its type
 *   exactly (values.ts): never good, always a reason and a reasonCode.
 * - The values of one publish response are delivered as one onSamples call per source time, in
 *   source-time order (moments.ts): a response can span several publishing intervals, and an
 *   event's context must never hold a value from after the event.
 * - close() is idempotent, never throws, and delivers no samples.
 */
import type { OpcuaDeviceConfig } from "../../config/schema/opcua.ts";
import { throwIfAborted } from "../../lib/abort.ts";
import { errorMessage, GatewayError, isGatewayError } from "../../lib/errors.ts";
import type { Driver, DriverContext, PollGroup, TagSample } from "../types.ts";
import { abortable, type Connection, openConnection } from "./connection.ts";
import { loadOpcua, type Opcua, quietOpcua } from "./load.ts";
import { moments } from "./moments.ts";
import { type Monitor, startMonitor } from "./monitor.ts";
import { pkiDirOf } from "./pki.ts";
import { chunks, type Resolved, resolveTags } from "./resolve.ts";
import { type OpcuaTag, opcuaTags } from "./tags.ts";
import { convertDataValue, type RawDataValue } from "./values.ts";

export interface OpcuaDriverOptions {
  /** gateway.data_dir: the PKI lives in <dataDir>/pki. */
  dataDir: string;
  /** The config file, named in the `pki trust` hint. */
  configPath?: string;
}

export class OpcuaDriver implements Driver {
  readonly id: string;
  readonly tags: readonly OpcuaTag[];
  private readonly device: OpcuaDeviceConfig;
  private readonly options: OpcuaDriverOptions;
  private readonly groups: readonly PollGroup[];
  private readonly byName: Map<string, number>;
  private opcua: Opcua | undefined;
  private connection: Connection | undefined;
  private resolved: Resolved[] = [];
  private monitor: Monitor | undefined;
  private onSamples: ((samples: TagSample[]) => void) | undefined;
  private lostReason = "not connected";
  /** Type misfits already logged (tag, server type, configured type). */
  private readonly misfitsLogged = new Set<string>();

  constructor(device: OpcuaDeviceConfig, options: OpcuaDriverOptions) {
    this.id = device.id;
    this.device = device;
    this.options = options;
    this.tags = opcuaTags(device);
    this.byName = new Map(this.tags.map((t, i) => [t.name, i]));
    const byInterval = new Map<number, string[]>();
    for (const tag of this.tags) {
      if (tag.mode !== "poll") continue;
      byInterval.set(tag.pollInterval, [...(byInterval.get(tag.pollInterval) ?? []), tag.name]);
    }
    this.groups = [...byInterval].map(([interval, tags]) => ({ interval, tags }));
  }

  get connected(): boolean {
    return this.connection !== undefined && this.connection.lost === undefined;
  }

  pollGroups(): readonly PollGroup[] {
    return this.groups;
  }

  async connect(ctx: DriverContext): Promise<void> {
    await this.close();
    throwIfAborted(ctx.signal);
    const opcua = await loadOpcua();
    quietOpcua(ctx.log);
    throwIfAborted(ctx.signal);
    this.opcua = opcua;
    const connection = await openConnection(
      {
        opcua,
        endpoint: this.device.endpoint,
        security: this.device.security,
        auth: this.device.auth,
        pkiDir: pkiDirOf(this.options.dataDir),
        requestTimeout: this.device.request_timeout,
        sessionTimeout: this.device.session_timeout,
        ...(this.options.configPath === undefined ? {} : { configPath: this.options.configPath }),
        log: ctx.log,
        device: this.id,
      },
      ctx.signal,
    );
    try {
      this.resolved = await abortable(
        resolveTags(
          connection.session,
          opcua,
          this.tags,
          connection.namespaces,
          connection.limits.maxNodesPerRead,
        ),
        ctx.signal,
      );
    } catch (err) {
      await connection.close();
      if (isGatewayError(err, "ABORTED")) throw err;
      throw new GatewayError(
        "OPCUA_CONNECT",
        `resolving the tags of ${this.id} at ${this.device.endpoint} failed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    this.resolved.forEach((r, i) => {
      if (!("reason" in r)) return;
      const tag = this.tags[i]!.name;
      if (r.serverType === undefined) {
        ctx.log.warn({ device: this.id, tag, reason: r.reason }, "OPC UA tag unresolved");
        return;
      }
      // a type misfit stays until the config or the server changes: said once, not per connect
      const key = `${tag}\u0000${r.serverType}\u0000${r.configuredType}`;
      if (this.misfitsLogged.has(key)) return;
      this.misfitsLogged.add(key);
      ctx.log.warn(
        {
          device: this.id,
          tag,
          server_type: r.serverType,
          configured_type: r.configuredType,
          code: r.reasonCode,
          reason: r.reason,
        },
        "OPC UA tag type does not fit its variable; the tag is bad",
      );
    });
    this.connection = connection;
    this.lostReason = "not connected";
    connection.onLost((reason) => {
      this.lostReason = `not connected: ${reason}`;
      ctx.log.warn({ device: this.id, reason }, "OPC UA connection lost");
      const deliver = this.onSamples;
      if (deliver) deliver(this.badSamples(this.subscribedIndexes(), this.lostReason));
    });
  }

  async read(ctx: DriverContext, group?: PollGroup): Promise<TagSample[]> {
    const indexes =
      group === undefined
        ? this.tags.map((_, i) => i)
        : group.tags.map((name) => this.byName.get(name)).filter((i) => i !== undefined);
    const connection = this.connection;
    const opcua = this.opcua;
    if (!connection || !opcua || !this.connected) return this.badSamples(indexes, this.lostReason);
    const samples: TagSample[] = [];
    const readable: { index: number; nodeId: string }[] = [];
    for (const index of indexes) {
      const r = this.resolved[index];
      if (r && "nodeId" in r) readable.push({ index, nodeId: r.nodeId });
      else samples.push(...this.unresolvedSamples(index));
    }
    for (const part of chunks(readable, connection.limits.maxNodesPerRead)) {
      try {
        const values = await abortable(
          connection.session.read(
            part.map((p) => ({ nodeId: p.nodeId, attributeId: opcua.AttributeIds.Value })),
            0,
          ),
          ctx.signal,
        );
        const readTime = Date.now();
        for (const [i, p] of part.entries())
          samples.push(this.sample(p.index, values[i], readTime));
      } catch (err) {
        if (isGatewayError(err, "ABORTED")) throw err;
        const reason = `read failed: ${errorMessage(err)}`;
        ctx.log.debug({ device: this.id, reason }, "OPC UA read failed");
        samples.push(
          ...this.badSamples(
            part.map((p) => p.index),
            reason,
          ),
        );
      }
    }
    return samples;
  }

  async subscribe(ctx: DriverContext, onSamples: (samples: TagSample[]) => void): Promise<void> {
    const connection = this.connection;
    const opcua = this.opcua;
    const indexes = this.subscribedIndexes();
    if (!connection || !opcua || indexes.length === 0) return;
    this.onSamples = onSamples;
    const unresolved = indexes.filter((i) => "reason" in this.resolved[i]!);
    for (const i of unresolved) onSamples(this.unresolvedSamples(i));
    const items = indexes
      .filter((i) => !unresolved.includes(i))
      .map((index) => {
        const tag = this.tags[index]!;
        return {
          index,
          nodeId: (this.resolved[index] as { nodeId: string }).nodeId,
          samplingInterval: tag.samplingInterval,
          queueSize: tag.queueSize,
          ...(tag.deadband === undefined ? {} : { deadband: tag.deadband }),
        };
      });
    if (items.length === 0) return;
    try {
      this.monitor = await abortable(
        startMonitor({
          session: connection.session,
          opcua,
          items,
          publishingInterval: this.device.publishing_interval,
          maxPerCall: connection.limits.maxMonitoredItemsPerCall,
          log: ctx.log,
          device: this.id,
          onValues: (values) => {
            if (this.onSamples !== onSamples || !this.connected) return;
            const readTime = Date.now();
            const samples = values.map((v) => this.sample(v.index, v.dataValue, readTime));
            for (const moment of moments(samples)) onSamples(moment);
          },
        }),
        ctx.signal,
      );
    } catch (err) {
      if (isGatewayError(err, "ABORTED")) throw err;
      const reason = `subscription failed: ${errorMessage(err)}`;
      onSamples(this.badSamples(indexes, reason));
      throw new GatewayError("OPCUA_CONNECT", `${this.id}: ${reason}`, { cause: err });
    }
    for (const [index, failure] of this.monitor.failures)
      onSamples(this.badSamples([index], failure.reason, failure.reasonCode));
  }

  async close(): Promise<void> {
    this.onSamples = undefined;
    const connection = this.connection;
    const monitor = this.monitor;
    this.connection = undefined;
    this.monitor = undefined;
    if (connection && connection.lost === undefined) await monitor?.terminate();
    await connection?.close();
  }

  private subscribedIndexes(): number[] {
    return this.tags.flatMap((t, i) => (t.mode === "subscribe" ? [i] : []));
  }

  private sample(index: number, dv: unknown, readTime: number): TagSample {
    const tag = this.tags[index]!;
    const r = this.resolved[index];
    if (dv === undefined || !r || !("nodeId" in r)) return this.badSamples([index], "no value")[0]!;
    const converted = convertDataValue(dv as RawDataValue, r.type, {
      scalarOnly: tag.scalarOnly,
    });
    return { device: this.id, tag: tag.name, ...converted, readTime };
  }

  /** A tag that did not resolve (or whose type does not fit): bad with its reason. */
  private unresolvedSamples(index: number): TagSample[] {
    const r = this.resolved[index];
    if (r === undefined || !("reason" in r)) return this.badSamples([index], "not resolved");
    return this.badSamples([index], r.reason, r.reasonCode);
  }

  private badSamples(indexes: readonly number[], reason: string, reasonCode?: string): TagSample[] {
    const readTime = Date.now();
    return indexes.map((i) => ({
      device: this.id,
      tag: this.tags[i]!.name,
      value: null,
      quality: "bad" as const,
      reason,
      ...(reasonCode === undefined ? {} : { reasonCode }),
      readTime,
    }));
  }
}
