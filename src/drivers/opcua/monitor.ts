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
} from "node-opcua";
import type { Logger } from "../../lib/logger.ts";
import type { Opcua } from "./load.ts";
import { chunks } from "./resolve.ts";

export interface MonitorItem {
  /** Caller's index of the tag. */
  index: number;
  nodeId: string;
  samplingInterval: number;
  queueSize: number;
  /** Absolute deadband for the server, when the tag has one it can express. */
  deadband?: number;
}

export interface MonitorOptions {
  session: ClientSession;
  opcua: Opcua;
  items: readonly MonitorItem[];
  publishingInterval: number;
  maxPerCall: number;
  log: Logger;
  device: string;
  onValues(values: { index: number; dataValue: DataValue }[]): void;
}

export interface Monitor {
  /** Tags whose monitored item could not be created, with the reason and its status name. */
  failures: Map<number, { reason: string; reasonCode: string }>;
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
  let pending: { index: number; dataValue: DataValue }[] = [];
  const deliver = (index: number, dataValue: DataValue) => {
    if (pending.length === 0) {
      queueMicrotask(() => {
        const batch = pending;
        pending = [];
        o.onValues(batch);
      });
    }
    pending.push({ index, dataValue });
  };
  const failures = new Map<number, { reason: string; reasonCode: string }>();
  const create = async (items: readonly MonitorItem[]): Promise<MonitorItem[]> => {
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
        monitored.on("changed", (_item: ClientMonitoredItemBase, dv: DataValue, i: number) => {
          const tag = part[i];
          if (tag) deliver(tag.index, dv);
        });
        monitored.monitoredItems.forEach((item, i) => {
          const status = item.statusCode;
          const tag = part[i]!;
          if (!status || status.isGood()) return;
          if (filter !== null && FILTER_REFUSED.has(status.name)) refused.push(tag);
          else
            failures.set(tag.index, {
              reason: `monitored item for ${tag.nodeId}: ${status.name}`,
              reasonCode: status.name,
            });
        });
      }
    }
    return refused;
  };
  try {
    const refused = await create(o.items);
    if (refused.length > 0) {
      o.log.info(
        { device: o.device, items: refused.length },
        "OPC UA server refused deadband filters; monitoring those items without a filter",
      );
      await create(refused.map(({ deadband: _d, ...item }) => item));
    }
  } catch (err) {
    await subscription.terminate().catch(() => {});
    throw err;
  }
  return {
    failures,
    async terminate() {
      await subscription.terminate().catch(() => {});
    },
  };
}
