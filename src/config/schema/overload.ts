import { z } from "zod";
import { duration } from "../units.ts";

/** What the gateway does when the plant changes faster than the broker takes events. */
export const overloadSchema = z
  .strictObject({
    policy: z
      .enum(["conflate", "keep"])
      .default("conflate")
      .describe(
        "conflate (default): while the backlog is over the limits, each tag's telemetry is journaled at most once per telemetry_interval, as its latest value with the count of changes it stands for (data.conflated); states, alarms, triggers, quality and status events are never held or dropped. keep: never conflate (the journal's size policy is then the only limit)",
      ),
    max_pending_events: z
      .number()
      .int()
      .min(100)
      .max(1_000_000_000)
      .default(20_000)
      .describe(
        "Overloaded when more events than this wait: to be journaled, or for the acknowledgement of a connected broker (an outage is no overload: the journal keeps all of it); over until the backlog is back under half of it (default 20000)",
      ),
    max_pending_age: duration({
      min: 1000,
      max: 86_400_000,
      description:
        "Overloaded when the oldest event waiting for a connected broker has waited longer than this, by the gateway's clock (so after an outage, while its backlog drains); over until it is back under half of it (default 10s)",
    }).default(10_000),
    telemetry_interval: duration({
      min: 10,
      max: 3_600_000,
      description:
        "While overloaded, each tag's telemetry is journaled at most once per this interval: its latest value, counting the changes it stands for (default 1s)",
    }).default(1000),
    degraded_for: duration({
      min: 1000,
      max: 86_400_000,
      description:
        "Health stays degraded this long after telemetry was conflated or events were dropped (default 1m)",
    }).default(60_000),
  })
  .describe("Overload: what is kept when the plant changes faster than the broker takes events");

export type OverloadConfig = z.output<typeof overloadSchema>;
