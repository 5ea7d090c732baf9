/** How the journal renders an event for the wire: the CloudEvents document and its topic. */
import type { GatewayConfig } from "../config/schema/root.ts";
import { fastRenderer } from "../events/render-fast.ts";
import { buildTopic, DEFAULT_TOPIC_TEMPLATE, isRetained } from "../events/topic.ts";
import type { GatewayEvent } from "../events/types.ts";
import type { Render } from "../journal/index.ts";

/** Topics kept (one per device, class and tag): far above any tag map's size. */
const MAX_TOPICS_CACHED = 100_000;

interface Cached {
  asset: GatewayEvent["asset"];
  topic: string;
}

export function createRender(config: GatewayConfig): Render {
  const gatewayId = config.gateway.id;
  const topic = {
    base: config.mqtt?.base_topic ?? "plc2mqtt",
    gateway: gatewayId,
    template: config.mqtt?.topic_template ?? DEFAULT_TOPIC_TEMPLATE,
  };
  const document = fastRenderer(gatewayId);
  // a tag's topic depends on its device's asset, its class and its name only: built once, and
  // found by device, class and name in turn (a key made of the three cost a string per event)
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
    if (cachedCount >= MAX_TOPICS_CACHED) {
      topics.clear();
      cachedCount = 0;
      return topicOf(event);
    }
    const built = buildTopic(event, topic);
    if (cached === undefined) cachedCount++;
    names.set(event.subject, { asset: event.asset, topic: built });
    return built;
  };
  return (event, sequence, id) => ({
    topic: topicOf(event),
    retain: isRetained(event),
    payload: document(event, sequence, id),
  });
}
