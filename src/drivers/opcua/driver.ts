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
 * - updateTags() applies a reload's tag-map change on the live session and subscription
 *   (issue 13.3): added and changed tags are resolved on the session, their monitored items
 *   created (a changed tag's replaced), removed tags' items deleted, a new publishing interval
 *   sent with ModifySubscription; tags that did not change keep their items and deliver nothing
 *   new. A change of the connection settings (tag-changes.ts) resolves false, touching nothing;
 *   a service call that fails on the way resolves false too (the runner replaces the driver).
 * - Every bad or uncertain sample carries a reasonCode (issue 13.4): the OPC UA status name
 *   (BadNodeIdUnknown...) when the server gave one, else a catalogue code (OPCUA_DISCONNECTED,
 *   OPCUA_READ, OPCUA_SUBSCRIBE, OPCUA_UNRESOLVED, OPCUA_NOT_A_VARIABLE, OPCUA_TYPE_MISMATCH...).
 * - Each tag that does not resolve, or whose monitored item is refused, is logged with its name
 *   in the log object (`tag`), so a repeat limiter keyed by tag tells the tags apart (13.7).
 * - close() is idempotent, never throws, and delivers no samples.
 */
import type { OpcuaDeviceConfig } from "../../config/schema/opcua.ts";
import type { DeviceConfig } from "../../config/schema/root.ts";
import { throwIfAborted } from "../../lib/abort.ts";
import { type ErrorCode, errorMessage, GatewayError, isGatewayError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logger.ts";
import type { Driver, DriverContext, PollGroup, TagSample } from "../types.ts";
import { abortable, type Connection, openConnection } from "./connection.ts";
import { loadOpcua, type Opcua, quietOpcua } from "./load.ts";
import { moments } from "./moments.ts";
import { type Failure, type Monitor, type MonitorItem, startMonitor } from "./monitor.ts";
import { pkiDirOf } from "./pki.ts";
import { chunks, type Resolved, resolveTags, type Unresolved } from "./resolve.ts";
import { connectionChanged, tagChanges } from "./tag-changes.ts";
import { type OpcuaTag, opcuaTags } from "./tags.ts";
import { convertDataValue, type RawDataValue } from "./values.ts";

export interface OpcuaDriverOptions {
  /** gateway.data_dir: the PKI lives in <dataDir>/pki. */
  dataDir: string;
  /** The config file, named in the `pki trust` hint. */
  configPath?: string;
}

const DISCONNECTED: ErrorCode = "OPCUA_DISCONNECTED";

function pollGroupsOf(tags: readonly OpcuaTag[]): PollGroup[] {
  const byInterval = new Map<number, string[]>();
  for (const tag of tags) {
    if (tag.mode !== "poll") continue;
    byInterval.set(tag.pollInterval, [...(byInterval.get(tag.pollInterval) ?? []), tag.name]);
  }
  return [...byInterval].map(([interval, names]) => ({ interval, tags: names }));
}

export class OpcuaDriver implements Driver {
  readonly id: string;
  private device: OpcuaDeviceConfig;
  private tagList: readonly OpcuaTag[];
  private byName: Map<string, OpcuaTag>;
  private groups: readonly PollGroup[];
  private readonly options: OpcuaDriverOptions;
  private opcua: Opcua | undefined;
  private connection: Connection | undefined;
  private resolved = new Map<string, Resolved>();
  /**
   * Tags a live tag-map change is replacing or removing: their old items' values (and old poll
   * reads) are dropped from the moment the change starts, since the engine has already taken
   * the new definition; cleared once the new items are in place.
   */
  private readonly retiring = new Set<string>();
  private monitor: Monitor | undefined;
  private onSamples: ((samples: TagSample[]) => void) | undefined;
  private lostReason = "not connected";
  /** subscribe() and updateTags() in turn: a change never meets a half-made subscription. */
  private turn: Promise<unknown> = Promise.resolve();
  /** Type misfits already logged (tag, server type, configured type). */
  private readonly misfitsLogged = new Set<string>();

  constructor(device: OpcuaDeviceConfig, options: OpcuaDriverOptions) {
    this.id = device.id;
    this.device = device;
    this.options = options;
    this.tagList = opcuaTags(device);
    this.byName = new Map(this.tagList.map((t) => [t.name, t]));
    this.groups = pollGroupsOf(this.tagList);
  }

  /** The device's tags as the driver uses them (changes with updateTags). */
  get tags(): readonly OpcuaTag[] {
    return this.tagList;
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
      this.resolved = await this.resolve(connection, opcua, this.tagList, ctx);
    } catch (err) {
      await connection.close();
      if (isGatewayError(err, "ABORTED")) throw err;
      throw new GatewayError(
        "OPCUA_CONNECT",
        `resolving the tags of ${this.id} at ${this.device.endpoint} failed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    this.connection = connection;
    this.lostReason = "not connected";
    connection.onLost((reason) => {
      this.lostReason = `not connected: ${reason}`;
      ctx.log.warn({ device: this.id, reason }, "OPC UA connection lost");
      const deliver = this.onSamples;
      if (deliver) deliver(this.badSamples(this.subscribedNames(), this.lostReason, DISCONNECTED));
    });
  }

  async read(ctx: DriverContext, group?: PollGroup): Promise<TagSample[]> {
    const names =
      group === undefined
        ? this.tagList.map((t) => t.name)
        : group.tags.filter((name) => this.byName.has(name));
    const connection = this.connection;
    const opcua = this.opcua;
    if (!connection || !opcua || !this.connected)
      return this.badSamples(names, this.lostReason, DISCONNECTED);
    const samples: TagSample[] = [];
    const readable: { name: string; nodeId: string; r: Resolved }[] = [];
    for (const name of names) {
      const r = this.resolved.get(name);
      if (r && "nodeId" in r) readable.push({ name, nodeId: r.nodeId, r });
      else samples.push(...this.unresolvedSamples(name));
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
        for (const [i, p] of part.entries()) {
          const sample = this.sample(p.name, values[i], readTime, p.r);
          if (sample) samples.push(sample);
        }
      } catch (err) {
        if (isGatewayError(err, "ABORTED")) throw err;
        const reason = `read failed: ${errorMessage(err)}`;
        ctx.log.debug({ device: this.id, reason }, "OPC UA read failed");
        const names = part.map((p) => p.name);
        samples.push(...this.badSamples(names, reason, "OPCUA_READ"));
      }
    }
    return samples;
  }

  subscribe(ctx: DriverContext, onSamples: (samples: TagSample[]) => void): Promise<void> {
    return this.oneAtATime(() => this.subscribeNow(ctx, onSamples));
  }

  private async subscribeNow(
    ctx: DriverContext,
    onSamples: (samples: TagSample[]) => void,
  ): Promise<void> {
    const connection = this.connection;
    const opcua = this.opcua;
    const names = this.subscribedNames();
    if (!connection || !opcua) return;
    this.onSamples = onSamples;
    if (names.length === 0) return;
    for (const name of names) {
      if (!this.isResolved(name)) onSamples(this.unresolvedSamples(name));
    }
    const items = this.monitorItems(names);
    if (items.length === 0) return;
    let failures: Map<string, Failure>;
    try {
      const monitor = await abortable(this.startMonitor(connection, opcua, ctx), ctx.signal);
      this.monitor = monitor;
      failures = await abortable(monitor.add(items), ctx.signal);
    } catch (err) {
      if (isGatewayError(err, "ABORTED")) throw err;
      await this.monitor?.terminate();
      this.monitor = undefined;
      const reason = `subscription failed: ${errorMessage(err)}`;
      onSamples(this.badSamples(names, reason, "OPCUA_SUBSCRIBE"));
      throw new GatewayError("OPCUA_CONNECT", `${this.id}: ${reason}`, { cause: err });
    }
    this.deliverFailures(failures, ctx.log);
  }

  /**
   * A reload's new config for this device: applied on the live session and subscription when
   * only the tag map (or subscription settings) changed; false when the connection settings
   * changed or a service call failed or was aborted (the runner then replaces the driver).
   * Never throws.
   */
  updateTags(next: DeviceConfig, ctx: DriverContext): Promise<boolean> {
    return this.oneAtATime(() => this.updateTagsNow(next, ctx));
  }

  private async updateTagsNow(next: DeviceConfig, ctx: DriverContext): Promise<boolean> {
    if (next.protocol !== "opcua" || next.id !== this.id) return false;
    if (connectionChanged(this.device, next)) return false;
    const nextTags = opcuaTags(next);
    const { added, changed, removed } = tagChanges(this.tagList, nextTags);
    const fresh = [...added, ...changed];
    const connection = this.connection;
    const opcua = this.opcua;
    const live = connection !== undefined && opcua !== undefined && this.connected;
    const retiring = live ? [...removed, ...changed.map((t) => t.name)] : [];
    for (const name of retiring) this.retiring.add(name);
    const settled = (): true => {
      for (const name of retiring) this.retiring.delete(name);
      return true;
    };
    let resolved = new Map<string, Resolved>();
    if (live && fresh.length > 0) {
      try {
        resolved = await this.resolve(connection, opcua, fresh, ctx);
      } catch (err) {
        ctx.log.warn({ device: this.id, err }, "OPC UA tag map change not applied live");
        return false;
      }
    }
    const wasSubscribed = new Set(this.subscribedNames());
    const before = this.device;
    this.device = next;
    this.tagList = nextTags;
    this.byName = new Map(nextTags.map((t) => [t.name, t]));
    this.groups = pollGroupsOf(nextTags);
    if (!live) {
      // applied at the next connect, which resolves every tag
      this.resolved.clear();
      return true;
    }
    for (const name of retiring) this.resolved.delete(name);
    for (const [name, r] of resolved) this.resolved.set(name, r);
    const onSamples = this.onSamples;
    if (onSamples === undefined) return settled(); // not subscribed yet: subscribe() uses the new map
    const replaced = new Set([...removed, ...changed.map((t) => t.name)]);
    const drop = [...wasSubscribed].filter((name) => replaced.has(name));
    const subscribe = fresh.filter((t) => t.mode === "subscribe").map((t) => t.name);
    try {
      if (this.monitor && drop.length > 0) await abortable(this.monitor.remove(drop), ctx.signal);
      if (this.monitor && before.publishing_interval !== next.publishing_interval)
        await abortable(this.monitor.setPublishingInterval(next.publishing_interval), ctx.signal);
      for (const name of subscribe) {
        if (!this.isResolved(name)) onSamples(this.unresolvedSamples(name));
      }
      const items = this.monitorItems(subscribe);
      if (items.length === 0) return settled();
      this.monitor ??= await abortable(this.startMonitor(connection, opcua, ctx), ctx.signal);
      this.deliverFailures(await abortable(this.monitor.add(items), ctx.signal), ctx.log);
    } catch (err) {
      ctx.log.warn({ device: this.id, err }, "OPC UA tag map change not applied live");
      return false;
    }
    return settled();
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

  private oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const run = this.turn.then(work, work);
    this.turn = run.catch(() => {});
    return run;
  }

  /** Resolves `tags` on the session and logs each one that does not resolve or fit. */
  private async resolve(
    connection: Connection,
    opcua: Opcua,
    tags: readonly OpcuaTag[],
    ctx: DriverContext,
  ): Promise<Map<string, Resolved>> {
    const resolved = await abortable(
      resolveTags(
        connection.session,
        opcua,
        tags,
        connection.namespaces,
        connection.limits.maxNodesPerRead,
      ),
      ctx.signal,
    );
    const out = new Map<string, Resolved>();
    resolved.forEach((r, i) => {
      const tag = tags[i]!.name;
      out.set(tag, r);
      if ("reason" in r) this.logUnresolved(ctx.log, tag, r);
    });
    return out;
  }

  private logUnresolved(log: Logger, tag: string, r: Unresolved): void {
    if (r.serverType === undefined) {
      log.warn(
        { device: this.id, tag, code: r.reasonCode, reason: r.reason },
        "OPC UA tag unresolved",
      );
      return;
    }
    // a type misfit stays until the config or the server changes: said once, not per connect
    const key = `${tag}\u0000${r.serverType}\u0000${r.configuredType}`;
    if (this.misfitsLogged.has(key)) return;
    this.misfitsLogged.add(key);
    log.warn(
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
  }

  /** A subscription whose values go to the current onSamples, never to a later subscribe's. */
  private startMonitor(connection: Connection, opcua: Opcua, ctx: DriverContext) {
    const onSamples = this.onSamples;
    return startMonitor({
      session: connection.session,
      opcua,
      publishingInterval: this.device.publishing_interval,
      maxPerCall: connection.limits.maxMonitoredItemsPerCall,
      log: ctx.log,
      device: this.id,
      onValues: (values) => {
        if (onSamples === undefined || this.onSamples !== onSamples || !this.connected) return;
        const readTime = Date.now();
        const samples = values.flatMap((v) => this.sample(v.tag, v.dataValue, readTime) ?? []);
        for (const moment of moments(samples)) onSamples(moment);
      },
    });
  }

  /** The monitored items of the resolved tags among `names`. */
  private monitorItems(names: readonly string[]): MonitorItem[] {
    return names.flatMap((name) => {
      const tag = this.byName.get(name);
      const r = this.resolved.get(name);
      if (tag === undefined || r === undefined || !("nodeId" in r)) return [];
      return [
        {
          tag: name,
          nodeId: r.nodeId,
          samplingInterval: tag.samplingInterval,
          queueSize: tag.queueSize,
          ...(tag.deadband === undefined ? {} : { deadband: tag.deadband }),
        },
      ];
    });
  }

  /** Tags whose monitored item the server refused: bad with the status, each one logged. */
  private deliverFailures(failures: Map<string, Failure>, log: Logger): void {
    for (const [tag, failure] of failures) {
      log.warn(
        { device: this.id, tag, code: failure.reasonCode, reason: failure.reason },
        "OPC UA monitored item refused",
      );
      this.onSamples?.(this.badSamples([tag], failure.reason, failure.reasonCode));
    }
  }

  private isResolved(name: string): boolean {
    const r = this.resolved.get(name);
    return r !== undefined && "nodeId" in r;
  }

  private subscribedNames(): string[] {
    return this.tagList.flatMap((t) => (t.mode === "subscribe" ? [t.name] : []));
  }

  /** A tag's value; undefined for a tag no longer in the map (a reload removed it). */
  private sample(
    name: string,
    dv: unknown,
    readTime: number,
    readWith?: Resolved,
  ): TagSample | undefined {
    const tag = this.byName.get(name);
    const r = this.resolved.get(name);
    if (tag === undefined || r === undefined || this.retiring.has(name)) return undefined;
    // a poll read that began before a tag-map change: its value is of the old node and type
    if (readWith !== undefined && readWith !== r) return undefined;
    if (dv === undefined || !("nodeId" in r))
      return this.badSamples([name], "no value", "OPCUA_READ")[0]!;
    const converted = convertDataValue(dv as RawDataValue, r.type, {
      scalarOnly: tag.scalarOnly,
    });
    return { device: this.id, tag: name, ...converted, readTime };
  }

  /** A tag that did not resolve (or whose type does not fit): bad with its reason. */
  private unresolvedSamples(name: string): TagSample[] {
    const r = this.resolved.get(name);
    if (r === undefined || !("reason" in r))
      return this.badSamples([name], "not resolved", "OPCUA_UNRESOLVED");
    return this.badSamples([name], r.reason, r.reasonCode);
  }

  private badSamples(names: readonly string[], reason: string, reasonCode: string): TagSample[] {
    const readTime = Date.now();
    return names.map((tag) => ({
      device: this.id,
      tag,
      value: null,
      quality: "bad" as const,
      reason,
      reasonCode,
      readTime,
    }));
  }
}
