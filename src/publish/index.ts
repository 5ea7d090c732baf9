/**
 * The publisher's public face: the only module other folders import from publish/ (test/
 * architecture holds them to it). The daemon's Publisher; replayRecords for `plc2mqtt
 * replay`; watchTopics, a plain subscriber for people watching events (the demo's live view).
 * Publisher.subscribe (topic filters the gateway's own session listens to, subscribed again on
 * every new session, handlers given the MQTT 5 request properties) and Publisher.respond (the
 * answer, with Correlation Data) serve issue 14's replay on request, whose requests arrive on
 * `<base>/<site>/cmd/<gateway id>/replay` over that session (app/replay-requests.ts).
 */
export { Publisher } from "./publisher.ts";
export { SET_ASIDE_CLASSES, type SetAsideClass } from "./refusals.ts";
export {
  type ReplayOptions,
  type ReplayRecord,
  type ReplayResult,
  replayRecords,
} from "./replay.ts";
export type {
  MessageHandler,
  MessageProperties,
  MqttConfig,
  OutboundMessage,
  OutboundRecord,
  PublisherJournal,
  PublisherOptions,
  PublisherStats,
  PublisherStatus,
  ResponseMessage,
  SetAsideNotice,
  Subscription,
} from "./types.ts";
export { type Watcher, type WatchOptions, watchTopics } from "./watch.ts";
