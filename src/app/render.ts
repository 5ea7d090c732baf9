/** How the journal renders an event for the wire: the CloudEvents document and its topic. */
import type { GatewayConfig } from "../config/schema/root.ts";
import { fastRenderer } from "../events/render-fast.ts";
import {
  buildTopic,
  DEFAULT_TOPIC_TEMPLATE,
  isRetained,
  type TopicContext,
} from "../events/topic.ts";
import type { GatewayEvent } from "../events/types.ts";
import type { Render } from "../journal/index.ts";

/** Topics kept (one per device, class and tag): far above any tag map's size. */
const MAX_TOPICS_CACHED = 100_000;

interface Cached {
  asset: GatewayEvent["asset"];
  topic: string;
}

/**
 * Topics by device, class and name in turn (a key made of the three cost a string per event);
 * a tag's topic depends on its device's asset, its class and its name only. Emptied when it
 * holds `max` topics: a gateway's tag maps are far below that, a flood of new names is not.
 */
export function topicCache(context: TopicContext, max = MAX_TOPICS_CACHED) {
  const topics = new Map<string, Map<string, Map<string, Cached>>>();
  let cachedCount = 0;
  const topicOf = (event: GatewayEvent): string => {
    let classes = topics.get(event.device);
    if (classes === undefined) {
      classes = new Map();
      topics.set(event.device, classes);
    }
    let names = classes.get(event.topicClass);
    if (names === undefined) {
      names = new Map();
      classes.set(event.topicClass, names);
    }
    const cached = names.get(event.subject);
    if (cached !== undefined && cached.asset === event.asset) return cached.topic;
    if (cachedCount >= max) {
      topics.clear();
      cachedCount = 0;
      return topicOf(event);
    }
    const built = buildTopic(event, context);
    if (cached === undefined) cachedCount++;
    names.set(event.subject, { asset: event.asset, topic: built });
    return built;
  };
  /** Topics held, counted in the maps themselves (for tests: the bound must hold). */
  const size = () => {
    let n = 0;
    for (const classes of topics.values()) for (const names of classes.values()) n += names.size;
    return n;
  };
  return { topicOf, size };
}

export function createRender(config: GatewayConfig): Render {
  const gatewayId = config.gateway.id;
  const document = fastRenderer(gatewayId);
  const { topicOf } = topicCache({
    base: config.mqtt?.base_topic ?? "plc2mqtt",
    gateway: gatewayId,
    template: config.mqtt?.topic_template ?? DEFAULT_TOPIC_TEMPLATE,
  });
  return (event, sequence, id) => ({
    topic: topicOf(event),
    retain: isRetained(event),
    payload: document(event, sequence, id),
  });
}
