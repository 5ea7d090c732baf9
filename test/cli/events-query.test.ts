/**
 * Issue 14: `plc2mqtt events` questions by batch and context, against a real journal holding
 * three days of simulated history of three devices (test/journal/history.ts: batches, state
 * changes, alarms, telemetry, batch.completed triggers with a snapshot, the context batch_id
 * changing from batch to batch). Each filter's result is compared, sequence by sequence, with
 * the generated events filtered in plain JavaScript: device, tag, type, absolute and relative
 * times (an injected now), --where on data, context and snapshot, combined filters and limit;
 * then the built CLI's csv, exactly.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filterQuery, selectEvents } from "../../src/cli/commands/events.ts";
import type { GatewayEvent, JsonValue } from "../../src/events/types.ts";
import { type JournalReader, openJournalReader } from "../../src/journal/index.ts";
import { event } from "../journal/helpers.ts";
import { goodCount, type HistoryShape, history, writeHistory } from "../journal/history.ts";
import { runCli } from "../support/cli.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const SHAPE: HistoryShape = {
  start: Date.parse("2026-03-02T00:00:00Z"),
  devices: ["filler-1", "press-1", "press-2"],
  steps: 3 * 24 * 6, // three days, a step every 10 minutes
  stepMs: 10 * 60_000,
  batchSteps: 36, // 6-hour batches
};
/** "Now" for relative times: the end of the third day. */
const NOW = SHAPE.start + 3 * DAY;

const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-events-query-"));
const config = join(dir, "gateway.yaml");
const all: GatewayEvent[] = [...history(SHAPE)];
/** The sequence the journal gave each generated event (read back and checked in beforeAll). */
let sequenceOf: Map<GatewayEvent, bigint>;
let reader: JournalReader;

type Data = { [key: string]: JsonValue };
const ctx = (e: GatewayEvent) => (e.context ?? {}) as Data;
const snap = (e: GatewayEvent) => (e.data.snapshot ?? {}) as Data;

/** The sequences `events` selects with these options (now injected), in order. */
function select(options: Record<string, unknown>, limit = 1_000_000): bigint[] {
  const query = filterQuery({ config, ...options }, NOW);
  const { records } = selectEvents(reader, query, limit, options.from !== undefined);
  return records.map((r) => r.sequence);
}

function expected(keep: (e: GatewayEvent) => boolean): bigint[] {
  return all.filter(keep).map((e) => sequenceOf.get(e)!);
}

beforeAll(async () => {
  writeFileSync(config, `version: 1\ngateway: { id: gw-1, data_dir: ${join(dir, "data")} }\n`);
  expect(await writeHistory(join(dir, "data"), all)).toBe(all.length);
  reader = openJournalReader(join(dir, "data"));
  const stored = [...reader.scan({})];
  expect(stored).toHaveLength(all.length);
  sequenceOf = new Map();
  stored.forEach((r, i) => {
    const e = all[i]!;
    const doc = JSON.parse(r.payload) as { data: Data };
    expect([r.type, r.device, r.subject, r.time]).toEqual([e.type, e.device, e.subject, e.time]);
    expect(doc.data.context).toEqual(e.context);
    sequenceOf.set(e, r.sequence);
  });
}, 60_000);

afterAll(() => {
  reader?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the history", () => {
  it("has what the questions need", () => {
    const types = new Set(all.map((e) => e.type));
    expect([...types].sort()).toEqual([
      "batch.completed",
      "plc2mqtt.alarm.changed",
      "plc2mqtt.state.changed",
      "plc2mqtt.telemetry",
    ]);
    expect(all.at(-1)!.time - all[0]!.time).toBeGreaterThan(2.9 * DAY);
    expect(new Set(all.map((e) => ctx(e).batch_id)).size).toBeGreaterThan(30);
  });
});

describe("filters, exactly", () => {
  const FROM_START = { from: "2026-03-01T00:00:00Z" };

  it("by device, tag and type", () => {
    expect(select({ ...FROM_START, device: "press-1" })).toEqual(
      expected((e) => e.device === "press-1"),
    );
    expect(select({ ...FROM_START, tag: "overtemp" })).toEqual(
      expected((e) => e.subject === "overtemp"),
    );
    expect(select({ ...FROM_START, type: "batch.completed" })).toEqual(
      expected((e) => e.type === "batch.completed"),
    );
  });

  it("by absolute and relative time (now injected)", () => {
    const from = SHAPE.start + DAY + 5 * HOUR;
    const to = SHAPE.start + DAY + 9 * HOUR;
    expect(select({ from: new Date(from).toISOString(), to: new Date(to).toISOString() })).toEqual(
      expected((e) => e.time >= from && e.time <= to),
    );
    expect(select({ from: "-1d" })).toEqual(expected((e) => e.time >= NOW - DAY));
    expect(select({ from: "-36h", to: "-1d" })).toEqual(
      expected((e) => e.time >= NOW - 36 * HOUR && e.time <= NOW - DAY),
    );
  });

  it("--where batch_id: the batch's whole story, in time order", () => {
    const story = select({ ...FROM_START, where: ["batch_id=B-00024"] });
    expect(story).toEqual(
      expected((e) => ctx(e).batch_id === "B-00024" || snap(e).batch_id === "B-00024"),
    );
    const events = all.filter((e) => story.includes(sequenceOf.get(e)!));
    expect(new Set(events.map((e) => e.device)).size).toBe(1);
    const kinds = events.map((e) => `${e.type}:${String(e.data.state ?? e.data.active ?? "")}`);
    expect(kinds[0]).toBe("plc2mqtt.state.changed:running");
    expect(kinds.slice(-2)).toEqual(["plc2mqtt.state.changed:stopped", "batch.completed:"]);
    expect(kinds).toContain("plc2mqtt.alarm.changed:true"); // 24 is a third batch: an alarm
    expect(kinds).toContain("plc2mqtt.alarm.changed:false");
    expect(kinds.filter((k) => k === "plc2mqtt.telemetry:")).toHaveLength(SHAPE.batchSteps);
  });

  it("--where on context only, on snapshot only, and on data", () => {
    expect(select({ ...FROM_START, where: ["context.batch_id=B-00024"] })).toEqual(
      expected((e) => ctx(e).batch_id === "B-00024"),
    );
    const completed = expected((e) => snap(e).batch_id === "B-00024");
    expect(completed).toHaveLength(1);
    expect(select({ ...FROM_START, where: ["snapshot.batch_id=B-00024"] })).toEqual(completed);
    expect(select({ ...FROM_START, where: ["data.snapshot.batch_id=B-00024"] })).toEqual(completed);
    expect(select({ ...FROM_START, where: ["data.state=running"] })).toEqual(
      expected((e) => e.data.state === "running"),
    );
    expect(select({ ...FROM_START, where: ["state=running"] })).toEqual(
      expected((e) => e.data.state === "running"),
    );
    // data.KEY is data's own key only: batch_id is no data key
    expect(select({ ...FROM_START, where: ["data.batch_id=B-00024"] })).toEqual([]);
  });

  it("--where compares numbers numerically, strings exactly, true/false as JSON", () => {
    const n = goodCount(24); // 100 + 10 * (24 % 7) = 130
    const byCount = expected((e) => snap(e).good_count === n);
    expect(byCount.length).toBeGreaterThan(1);
    expect(select({ ...FROM_START, where: [`good_count=${n}`] })).toEqual(byCount);
    expect(select({ ...FROM_START, where: [`good_count=${n}.0`] })).toEqual(byCount);
    expect(select({ ...FROM_START, where: [`good_count=${n}e0`] })).toEqual(byCount);
    // 13 is a prefix of 130 in the stored text: the prefilter passes, the exact test refuses
    expect(select({ ...FROM_START, where: [`good_count=${n / 10}`] })).toEqual(
      expected((e) => snap(e).good_count === n / 10),
    );
    // a string of digits: `order=1024` matches the string "1024", and `1024.0` does not
    expect(select({ ...FROM_START, where: ["order=1024"] })).toEqual(
      expected((e) => ctx(e).order === "1024"),
    );
    expect(select({ ...FROM_START, where: ["order=1024.0"] })).toEqual([]);
    expect(select({ ...FROM_START, where: ["active=true"] })).toEqual(
      expected((e) => e.data.active === true),
    );
    expect(select({ ...FROM_START, where: ["active=false"] })).toEqual(
      expected((e) => e.data.active === false),
    );
    expect(select({ ...FROM_START, where: ["previous_state=null"] })).toEqual(
      expected((e) => e.data.previous_state === null),
    );
  });

  it("combines --where terms (AND) with device, type, time and limit", () => {
    const from = SHAPE.start + 12 * HOUR;
    const to = SHAPE.start + 2 * DAY;
    const keep = (e: GatewayEvent) =>
      e.device === "press-2" &&
      e.type === "plc2mqtt.telemetry" &&
      e.time >= from &&
      e.time <= to &&
      ctx(e).line_speed === 12 &&
      typeof ctx(e).batch_id === "string";
    const options = {
      device: "press-2",
      type: "plc2mqtt.telemetry",
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      where: ["line_speed=12", `context.batch_id=${String(ctx(all.find(keep)!).batch_id)}`],
    };
    const first = all.find(keep)!;
    const both = expected((e) => keep(e) && ctx(e).batch_id === ctx(first).batch_id);
    expect(both.length).toBeGreaterThan(0);
    expect(select(options)).toEqual(both);
    // --limit: with --from the first ones; without, the latest ones, in sequence order
    expect(select(options, 2)).toEqual(both.slice(0, 2));
    const latest = expected((e) => ctx(e).batch_id === "B-00024").slice(-3);
    expect(select({ where: ["context.batch_id=B-00024"] }, 3)).toEqual(latest);
    // and how many matched in all, for the note on stderr
    const batch = filterQuery({ config, where: ["context.batch_id=B-00024"] }, NOW);
    const all24 = expected((e) => ctx(e).batch_id === "B-00024").length;
    expect(selectEvents(reader, batch, 3, false).matched).toBe(all24);
    expect(selectEvents(reader, { ...batch, from: 0 }, 3, true).matched).toBe(all24);
  });

  it("refuses a --where that is not KEY=VALUE", () => {
    expect(() => filterQuery({ config, where: ["batch_id"] })).toThrow(
      /--where "batch_id" is not KEY=VALUE/,
    );
    expect(() => filterQuery({ config, where: ['a"b=1'] })).toThrow(/is not KEY=VALUE/);
  });
});

describe("the built CLI", () => {
  it("prints a batch's events as csv: fixed columns, one per data key, exactly", async () => {
    const picked = all.filter(
      (e) => ctx(e).batch_id === "B-00024" && e.type !== "plc2mqtt.telemetry",
    );
    const { code, stdout, stderr } = await runCli([
      "events",
      "-c",
      config,
      "--where",
      "batch_id=B-00024",
      "--type",
      "plc2mqtt.alarm.changed",
      "--format",
      "csv",
    ]);
    expect(code, stderr).toBe(0);
    const alarms = picked.filter((e) => e.type === "plc2mqtt.alarm.changed");
    expect(alarms).toHaveLength(2);
    const header =
      "sequence,time,type,device,subject,active,alarm,bit,raw,context.batch_id,context.line_speed,context.order";
    const rows = alarms.map((e) =>
      [
        sequenceOf.get(e),
        new Date(e.time).toISOString(),
        e.type,
        e.device,
        e.subject,
        e.data.active,
        e.data.alarm,
        e.data.bit,
        e.data.raw,
        ctx(e).batch_id,
        ctx(e).line_speed,
        ctx(e).order,
      ].join(","),
    );
    expect(stdout).toBe([header, ...rows, ""].join("\r\n"));

    const trigger = await runCli([
      "events",
      ...["-c", config, "--where", "snapshot.batch_id=B-00024", "--format", "csv"],
    ]);
    expect(trigger.code, trigger.stderr).toBe(0);
    const done = picked.find((e) => e.type === "batch.completed")!;
    expect(trigger.stdout).toBe(
      [
        "sequence,time,type,device,subject,trigger,value,context.batch_id,context.line_speed,context.order,snapshot.batch_id,snapshot.good_count",
        `${sequenceOf.get(done)},${new Date(done.time).toISOString()},batch.completed,${done.device},batch_done,batch_done,true,B-00024,${String(ctx(done).line_speed)},1024,B-00024,${goodCount(24)}`,
        "",
      ].join("\r\n"),
    );
  });

  it("quotes csv cells per RFC 4180 and writes objects as JSON, null as null", async () => {
    const own = mkdtempSync(join(tmpdir(), "plc2mqtt-events-csv-"));
    try {
      const cfg = join(own, "gateway.yaml");
      writeFileSync(cfg, `version: 1\ngateway: { id: gw-1, data_dir: ${join(own, "data")} }\n`);
      const e = event({
        type: "quality.result",
        subject: "result",
        topicClass: "event",
        data: {
          trigger: "result",
          value: 'say "hi", then\nleave',
          snapshot: { serial: "S,1", limits: { lo: 1, hi: 2 }, torque: null },
        },
      });
      await writeHistory(join(own, "data"), [e]);
      const { code, stdout, stderr } = await runCli(["events", "-c", cfg, "--format", "csv"]);
      expect(code, stderr).toBe(0);
      expect(stdout).toBe(
        [
          "sequence,time,type,device,subject,trigger,value,snapshot.limits,snapshot.serial,snapshot.torque",
          `1,${new Date(e.time).toISOString()},quality.result,press-1,result,result,"say ""hi"", then\nleave","{""hi"":2,""lo"":1}","S,1",null`,
          "",
        ].join("\r\n"),
      );
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it("a damaged payload holding the --where text neither matches nor fails the query", async () => {
    const own = mkdtempSync(join(tmpdir(), "plc2mqtt-events-damaged-"));
    try {
      const cfg = join(own, "gateway.yaml");
      writeFileSync(cfg, `version: 1\ngateway: { id: gw-1, data_dir: ${join(own, "data")} }\n`);
      const batch = { context: { batch_id: "B-7" } };
      await writeHistory(join(own, "data"), [event(batch), event(batch)]);
      const db = new DatabaseSync(join(own, "data", "journal.sqlite"));
      const cut = Number(db.prepare("SELECT max(sequence) AS s FROM records").get()?.s);
      // cut short, as a torn write would leave it: not JSON, the needle still in it
      db.prepare(
        "UPDATE records SET payload = substr(payload, 1, instr(payload, '\"B-7\"') + 4) WHERE sequence = ?",
      ).run(cut);
      db.close();
      const result = await runCli(["events", "-c", cfg, "--where", "batch_id=B-7", "--json"]);
      expect(result.code, result.stderr).toBe(0);
      expect(
        result.stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l).data.context),
      ).toEqual([{ batch_id: "B-7" }]);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it("refuses csv with --follow and an unknown format", async () => {
    const csv = await runCli(["events", "-c", config, "--format", "csv", "--follow"]);
    expect(csv.code).toBe(2);
    expect(csv.stderr).toMatch(/--follow cannot print csv/);
    const xml = await runCli(["events", "-c", config, "--format", "xml"]);
    expect(xml.code).toBe(2);
    expect(xml.stderr).toMatch(/--format must be one of table, json, csv/);
  });
});
