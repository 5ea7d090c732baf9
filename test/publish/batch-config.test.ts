/** mqtt.batch in the config: defaults (off), bounds, and what batching needs of the template. */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/errors.ts";
import { parseConfig } from "../../src/config/load.ts";

const HEAD = "version: 1\ngateway:\n  id: edge\nmqtt:\n  url: mqtt://b:1883\n";

function parse(text: string) {
  return parseConfig(text, { file: "t.yaml", env: {}, baseDir: "/" });
}

function issuesOf(text: string) {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => [i.path, i.line, i.message]);
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("mqtt.batch", () => {
  it("is off by default: no class batched, 100 events, 20 ms", () => {
    expect(parse(HEAD).config.mqtt?.batch).toEqual({ classes: [], max_events: 100, max_delay: 20 });
  });

  it("takes the batchable classes, a size and a delay", () => {
    const { config } = parse(
      `${HEAD}  batch: { classes: [telemetry, event], max_events: 500, max_delay: 0ms }\n`,
    );
    expect(config.mqtt?.batch).toEqual({
      classes: ["telemetry", "event"],
      max_events: 500,
      max_delay: 0,
    });
  });

  it("refuses retained classes, repeats, unknown keys and sizes out of bounds, with the line", () => {
    expect(issuesOf(`${HEAD}  batch: { classes: [state] }\n`)).toEqual([
      ["mqtt.batch.classes[0]", 6, expect.stringMatching(/telemetry.*quality.*event/)],
    ]);
    expect(issuesOf(`${HEAD}  batch: { classes: [telemetry, telemetry] }\n`)).toEqual([
      ["mqtt.batch.classes", 6, "each class at most once"],
    ]);
    expect(issuesOf(`${HEAD}  batch: { max_event: 10 }\n`)[0]?.[0]).toBe("mqtt.batch.max_event");
    expect(issuesOf(`${HEAD}  batch: { max_events: 1 }\n`)[0]?.[0]).toBe("mqtt.batch.max_events");
    expect(issuesOf(`${HEAD}  batch: { max_delay: 1m }\n`)[0]?.[0]).toBe("mqtt.batch.max_delay");
  });

  it("needs a topic template whose last level is {name} when it batches", () => {
    const template = '  topic_template: "{base}/{name}/{class}"\n';
    expect(issuesOf(`${HEAD}${template}  batch: { classes: [telemetry] }\n`)).toEqual([
      [
        "mqtt.batch.classes",
        7,
        "batching needs a topic_template whose last level is {name}: a batch goes to the same topic with _batch as its last level",
      ],
    ]);
    // off, any template will do
    expect(parse(`${HEAD}${template}`).config.mqtt?.topic_template).toBe("{base}/{name}/{class}");
  });
});
