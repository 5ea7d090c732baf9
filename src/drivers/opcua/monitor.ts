/**
 * The subscription of a device: one subscription (publishing interval per device), monitored
 * items with each tag's sampling interval and queue size, and the tag's deadband pushed to the
 * server as an absolute DataChangeFilter where the server accepts it.
 *
 * - Items with equal parameters are created together, split to fit the server's
 *   MaxMonitoredItemsPerCall.
 * - A filter the server refuses (BadFilterNotAllowed, BadMonitoredItemFilterUnsupported,
 *   BadDeadbandFilterInvalid...) is dropped for that item silently (one info line per
 *   subscription): the engine applies deadbands anyway and stays the only judge of what is an
 *   event; the server filter only saves traffic and is never stricter than the engine's.
 * - Any other per-item failure (BadNodeIdUnknown...) is returned as that tag's reason.
 * - Items are keyed by tag name. add() and remove() change the items of the live subscription
 *   (a reload's tag-map change, issue 13.3): a value of an item removed or replaced is never
 *   delivered, even when it arrives after the removal.
 * - Values are delivered in batches: every value of one publish response in one call (node-opcua
 *   hands a response's DataChangeNotifications to the items' "changed" handlers in one
 *   synchronous loop, ClientSubscription.onNotificationMessage; a microtask closes the batch).
 *   The driver splits a batch into moments by source time (moments.ts).
 */
import type {
  ClientMonitoredItemBase,
  ClientSession,
  ClientSubscription,
  DataValue,
} from "node-opcua-client";
import type { Logger } from "../../lib/logger.ts";
import type { Opcua } from "./load.ts";
import { chunks } from "./resolve.ts";

export interface MonitorItem {
  /** The tag the item delivers to (names are unique within a device). */
  tag: string;
  nodeId: string;
  samplingInterval: number;
  queueSize: number;
  /** Absolute deadband for the server, when the tag has one it can express. */
  deadband?: number;
}

export interface MonitorOptions {
  session: ClientSession;
  opcua: Opcua;
  publishingInterval: number;
  maxPerCall: number;
  log: Logger;
  device: string;
  onValues(values: { tag: string; dataValue: DataValue }[]): void;
}

export interface Failure {
  reason: string;
  reasonCode: string;
}

export interface Monitor {
  /**
   * Creates monitored items on the subscription (replacing the item of a tag that has one);
   * resolves with the tags whose item the server refused, with the reason and its status name.
   */
  add(items: readonly MonitorItem[]): Promise<Map<string, Failure>>;
  /** Deletes the items of these tags (a tag without one is ignored). */
  remove(tags: readonly string[]): Promise<void>;
  /** Asks the server for another publishing interval (ModifySubscription). */
  setPublishingInterval(ms: number): Promise<void>;
  terminate(): Promise<void>;
}

const FILTER_REFUSED = new Set([
  "BadFilterNotAllowed",
  "BadMonitoredItemFilterUnsupported",
  "BadMonitoredItemFilterInvalid",
  "BadDeadbandFilterInvalid",
]);

function key(item: MonitorItem): string {
  return `${item.samplingInterval}|${item.queueSize}|${item.deadband ?? ""}`;
}

/**
 * node-opcua deletes single items of a group only through this method of the subscription
 * (ClientMonitoredItemGroup.terminate deletes the whole group): it forgets the items and
 * sends DeleteMonitoredItems.
 */
interface DeletingSubscription {
  _delete_monitored_items(items: ClientMonitoredItemBase[], callback: (err?: Error) => void): void;
}

export async function startMonitor(o: MonitorOptions): Promise<Monitor> {
  const { opcua, session } = o;
  const subscription: ClientSubscription = await session.createSubscription2({
    requestedPublishingInterval: o.publishingInterval,
    requestedMaxKeepAliveCount: 10,
    requestedLifetimeCount: 60,
    maxNotificationsPerPublish: 0,
    publishingEnabled: true,
    priority: 1,
  });
  /** The live item of each tag: values of any other item are dropped. */
  const active = new Map<string, ClientMonitoredItemBase>();
  let pending: { tag: string; dataValue: DataValue }[] = [];
  const deliver = (tag: string, dataValue: DataValue) => {
    if (pending.length === 0) {
      queueMicrotask(() => {
        const batch = pending;
        pending = [];
        o.onValues(batch);
      });
    }
    pending.push({ tag, dataValue });
  };
  const remove = async (tags: readonly string[]): Promise<void> => {
    const items = tags.flatMap((tag) => {
      const item = active.get(tag);
      active.delete(tag);
      return item === undefined ? [] : [item];
    });
    for (const part of chunks(items, o.maxPerCall)) {
      await new Promise<void>((resolve, reject) => {
        (subscription as unknown as DeletingSubscription)._delete_monitored_items(part, (err) =>
          err ? reject(err) : resolve(),
        );
      });
    }
  };
  const create = async (
    items: readonly MonitorItem[],
    failures: Map<string, Failure>,
  ): Promise<MonitorItem[]> => {
    const refused: MonitorItem[] = [];
    const groups = new Map<string, MonitorItem[]>();
    for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
    for (const group of groups.values()) {
      const first = group[0]!;
      const filter =
        first.deadband === undefined
          ? null
          : new opcua.DataChangeFilter({
              trigger: opcua.DataChangeTrigger.StatusValue,
              deadbandType: opcua.DeadbandType.Absolute,
              deadbandValue: first.deadband,
            });
      for (const part of chunks(group, o.maxPerCall)) {
        const monitored = await subscription.monitorItems(
          part.map((i) => ({ nodeId: i.nodeId, attributeId: opcua.AttributeIds.Value })),
          {
            samplingInterval: first.samplingInterval,
            queueSize: first.queueSize,
            discardOldest: true,
            filter,
          },
          opcua.TimestampsToReturn.Both,
        );
        monitored.on("changed", (item: ClientMonitoredItemBase, dv: DataValue, i: number) => {
          const tag = part[i]?.tag;
          if (tag !== undefined && active.get(tag) === item) deliver(tag, dv);
        });
        monitored.monitoredItems.forEach((item, i) => {
          const status = item.statusCode;
          const tag = part[i]!;
          if (!status || status.isGood()) {
            active.set(tag.tag, item);
            return;
          }
          if (filter !== null && FILTER_REFUSED.has(status.name)) refused.push(tag);
          else
            failures.set(tag.tag, {
              reason: `monitored item for ${tag.nodeId}: ${status.name}`,
              reasonCode: status.name,
            });
        });
      }
    }
    return refused;
  };
  const add = async (items: readonly MonitorItem[]): Promise<Map<string, Failure>> => {
    await remove(items.map((i) => i.tag).filter((tag) => active.has(tag)));
    const failures = new Map<string, Failure>();
    const refused = await create(items, failures);
    if (refused.length > 0) {
      o.log.info(
        { device: o.device, items: refused.length },
        "OPC UA server refused deadband filters; monitoring those items without a filter",
      );
      await create(
        refused.map(({ deadband: _d, ...item }) => item),
        failures,
      );
    }
    return failures;
  };
  return {
    add,
    remove,
    async setPublishingInterval(ms) {
      await subscription.modify({ requestedPublishingInterval: ms });
    },
    async terminate() {
      active.clear();
      await subscription.terminate().catch(() => {});
    },
  };
}
