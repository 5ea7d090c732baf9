/**
 * The I/O thread's outbox (src/drivers/modbus/io-thread-outbox.ts): readings put in doubt reach
 * the runner only after the polls the thread sent before them, never ahead of a reading they
 * correct; a stopped schedule's polls are handed on in order, a closed connection's dropped.
 */
import { describe, expect, it } from "vitest";
import { PollOutbox } from "../../src/drivers/modbus/io-thread-outbox.ts";
import type { PolledSamples, TagSample } from "../../src/drivers/types.ts";

function sample(tag: string, quality: TagSample["quality"], value: number | null): TagSample {
  return { device: "plc", tag, value, quality, readTime: 0 };
}

function poll(value: number): PolledSamples {
  return { samples: [sample("a", "good", value)], durationMs: 1, skipped: 0 };
}

const doubt = [sample("a", "bad", null)];

describe("the I/O thread's outbox", () => {
  it("holds a correction until the polls sent before it are taken and given to the runner", async () => {
    // the runner's delivery order: what the outbox hands on, and the polls it takes
    const delivered: TagSample[][] = [];
    const box = new PollOutbox((s) => delivered.push(s));
    const take = (schedule: number) => {
      const taken = box.take(schedule);
      if (taken) delivered.push(taken.samples); // as the runner does once nextPoll settles
      return taken;
    };
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    box.poll(1, poll(10));
    box.poll(2, poll(20));
    box.doubt(doubt);
    box.poll(1, poll(11));
    expect(delivered).toEqual([]);
    expect(take(1)?.samples[0]?.value).toBe(10);
    await turn();
    expect(delivered.map((s) => s[0]!.value)).toEqual([10]); // schedule 2's poll came first
    expect(take(2)?.samples[0]?.value).toBe(20);
    await turn();
    // the correction after the poll it corrects, never before it
    expect(delivered.map((s) => s[0]!.value)).toEqual([10, 20, null]);
    expect(take(1)?.samples[0]?.value).toBe(11); // the poll after it stays a poll
    expect(box.take(1)).toBeUndefined();
  });

  it("hands a correction on at once when no poll waits", () => {
    const handed: TagSample[][] = [];
    const box = new PollOutbox((s) => handed.push(s));
    box.doubt(doubt);
    expect(handed).toEqual([doubt]);
  });

  it("hands a stopped schedule's polls on in order with the corrections, drops a closed one's", () => {
    const handed: TagSample[][] = [];
    const box = new PollOutbox((s) => handed.push(s));
    box.poll(1, poll(10));
    box.doubt(doubt);
    box.poll(1, poll(11));
    box.end(1, true);
    expect(handed.map((s) => s[0]!.value)).toEqual([10, null, 11]);

    handed.length = 0;
    box.poll(3, poll(30));
    box.doubt(doubt);
    box.close();
    expect(handed).toEqual([doubt]); // corrections are never dropped
    expect(box.take(3)).toBeUndefined();
  });
});
