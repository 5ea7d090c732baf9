/**
 * What turns a tag's samples into events: deadband, heartbeat, minimum interval, staleness,
 * states, alarm bits and triggers. Shared by every protocol's tag schema; the engine is the
 * only reader.
 */
import { z } from "zod";
import { duration } from "../units.ts";

const rangeSchema = z
  .strictObject({
    min: z.number().finite().describe("Lowest value the tag can have"),
    max: z.number().finite().describe("Highest value the tag can have"),
  })
  .refine((r) => r.max > r.min, { message: "max must be greater than min" })
  .describe("The tag's engineering range: the base of percent deadbands");

// One object with both keys, not a union: an error then names the key at fault ("unknown key
// absolut (did you mean absolute?)") instead of every union branch's complaint.
const deadbandSchema = z
  .strictObject({
    absolute: z
      .number()
      .finite()
      .min(0)
      .optional()
      .describe("Report when the value moved by more than this"),
    percent: z
      .number()
      .finite()
      .min(0)
      .max(100)
      .optional()
      .describe(
        "Report when the value moved by more than this percent of the tag's range, or of the last reported value when no range is given",
      ),
  })
  .superRefine((band, ctx) => {
    if ((band.absolute === undefined) === (band.percent === undefined)) {
      ctx.addIssue({ code: "custom", message: "give either absolute or percent" });
    }
  })
  .transform((band): { absolute: number } | { percent: number } =>
    band.absolute !== undefined ? { absolute: band.absolute } : { percent: band.percent! },
  )
  .describe("Report by exception: changes within the deadband are not events");

const TRIGGER_EVENT = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/;

const triggerSchema = z
  .strictObject({
    on: z
      .enum(["rising", "falling", "change", "value"])
      .describe(
        "rising: false to true (or 0 to non-zero); falling: the reverse; change: any change; value: becomes equal to `value`",
      ),
    value: z
      .union([z.number(), z.string(), z.boolean()])
      .optional()
      .describe("For on: value, the value that fires the trigger"),
    event: z
      .string()
      .regex(TRIGGER_EVENT, "an event type such as batch.completed: lower case, dots between words")
      .refine((t) => !t.startsWith("plc2mqtt."), "plc2mqtt.* event types are the gateway's own")
      .describe("The event type to emit, e.g. batch.completed or quality.result"),
    snapshot: z
      .array(z.string().min(1))
      .max(100)
      .default([])
      .describe("Tags of the same device whose values from the same poll travel in the event"),
  })
  .refine((t) => (t.on === "value") === (t.value !== undefined), {
    message: "value is required with on: value, and only then",
    path: ["value"],
  })
  .describe("Emit a user-named event when the tag's value does something");

const stateName = z.string().min(1).max(64);

/** The rule fields every tag has, whatever its protocol. */
export const tagRuleFields = {
  unit: z.string().max(32).optional().describe("Engineering unit, carried in events (e.g. degC)"),
  range: rangeSchema.optional(),
  deadband: deadbandSchema.optional(),
  heartbeat: duration({
    min: 100,
    max: 7 * 86_400_000,
    description: "Re-send the last value when the tag has not reported for this long",
  }).optional(),
  min_interval: duration({
    min: 1,
    max: 86_400_000,
    description:
      "Hold back bursts: at most one telemetry event per interval, always the latest value",
  }).optional(),
  stale_after: duration({
    min: 10,
    max: 7 * 86_400_000,
    description: "A tag not read successfully for this long becomes stale (default: the device's)",
  }).optional(),
  states: z
    .record(
      z.string().regex(/^-?\d+$|^true$|^false$/, "a raw value: an integer, true or false"),
      stateName,
    )
    .optional()
    .describe("Enumerated tag: raw value -> state name; emits state.changed instead of telemetry"),
  alarms: z
    .record(z.string().regex(/^([0-9]|[1-5][0-9]|6[0-3])$/, "a bit number from 0 to 63"), stateName)
    .optional()
    .describe(
      "Alarm word: bit number -> alarm name; emits alarm.changed as each bit raises and clears",
    ),
  trigger: triggerSchema.optional(),
};

/** Device-level rule fields. */
export const deviceRuleFields = {
  stale_after: duration({
    min: 10,
    max: 7 * 86_400_000,
    description: "Tags not read successfully for this long become stale (default: off)",
  }).optional(),
  context: z
    .array(z.string().min(1))
    .max(20)
    .default([])
    .describe("Tags whose latest values travel in every event of this device (e.g. batch_id)"),
};
