/**
 * A plain MQTT subscriber for people watching events (the demo's live view, commissioning): it
 * hands each message's topic and payload to a callback. Not part of the data path.
 */
import mqtt from "mqtt";

export interface Watcher {
  close(): Promise<void>;
}

export interface WatchOptions {
  url: string;
  topics: readonly string[];
  username?: string;
  password?: string;
  onMessage: (topic: string, payload: string, retained: boolean) => void;
  onError?: (err: Error) => void;
}

export async function watchTopics(options: WatchOptions): Promise<Watcher> {
  const client = await mqtt.connectAsync(options.url, {
    reconnectPeriod: 1000,
    clean: true,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
  });
  client.on("message", (topic, payload, packet) =>
    options.onMessage(topic, payload.toString("utf8"), packet.retain),
  );
  client.on("error", (err) => options.onError?.(err));
  await client.subscribeAsync([...options.topics], { qos: 1 });
  return { close: () => client.endAsync() };
}
