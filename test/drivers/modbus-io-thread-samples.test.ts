/**
 * A poll's samples in columns across a real MessagePort (io-thread-samples.ts): every field
 * comes back as it went, names sent once are used by later polls, and a name number the
 * receiving end never got is an error, never a sample under another tag's name.
 */
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import {
  type PackedSamples,
  SamplePacker,
  SampleUnpacker,
} from "../../src/drivers/modbus/io-thread-samples.ts";
import type { TagSample } from "../../src/events/sample.ts";

/** Sends `packed` through a MessagePort and returns what the other end received. */
function across(packed: PackedSamples): PackedSamples {
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(packed);
    const got = receiveMessageOnPort(port2);
    if (got === undefined) throw new Error("nothing came through the port");
    return got.message as PackedSamples;
  } finally {
    port1.close();
    port2.close();
  }
}

const first: TagSample[] = [
  { device: "plc1", tag: "speed", value: 1200, quality: "good", readTime: 1_700_000_000_001 },
  { device: "plc1", tag: "temp", value: 21.5, quality: "good", readTime: 1_700_000_000_002 },
  {
    device: "plc1",
    tag: "level",
    value: null,
    quality: "bad",
    reason: "exception 2 (illegal data address)",
    reasonCode: "MODBUS_EXCEPTION",
    readTime: 1_700_000_000_003,
  },
  {
    device: "plc1",
    tag: "name",
    value: "batch-7",
    quality: "uncertain",
    reason: "UncertainLastUsableValue",
    sourceTime: 1_699_999_999_000,
    readTime: 1_700_000_000_004,
  },
  { device: "plc1", tag: "flags", value: [true, false], quality: "good", readTime: 3 },
  { device: "plc1", tag: "big", value: "18446744073709551615", quality: "good", readTime: 4 },
  {
    device: "plc1",
    tag: "recipe",
    value: { a: 1, b: [2, "x"] },
    quality: "good",
    snapshotRead: true,
    readTime: 5,
  },
  { device: "plc1", tag: "gone", value: null, quality: "stale", readTime: 6 },
];

describe("a poll's samples in columns", () => {
  it("come back with every field as they went, names sent once", () => {
    const packer = new SamplePacker();
    const unpacker = new SampleUnpacker();
    const packed = across(packer.pack(first));
    expect(packed.names).toEqual([
      "plc1",
      "speed",
      "temp",
      "level",
      "name",
      "flags",
      "big",
      "recipe",
      "gone",
    ]);
    expect(unpacker.unpack(packed)).toEqual(first);
    // the next poll: known names go by number only, a new one comes with it
    const next: TagSample[] = [
      { device: "plc1", tag: "temp", value: 22, quality: "good", readTime: 7 },
      { device: "plc1", tag: "pressure", value: -3, quality: "good", readTime: 8 },
      { device: "plc1", tag: "speed", value: 0, quality: "bad", reason: "timeout", readTime: 9 },
    ];
    const again = across(packer.pack(next));
    expect(again.names).toEqual(["pressure"]);
    expect(unpacker.unpack(again)).toEqual(next);
  });

  it("refuses a quality it has no number for, rather than send it as good", () => {
    const odd = { device: "plc1", tag: "t", value: 1, quality: "fine", readTime: 1 };
    expect(() => new SamplePacker().pack([odd as unknown as TagSample])).toThrow(/quality fine/);
  });

  it("refuses a name number that never came", () => {
    const packer = new SamplePacker();
    packer.pack(first); // this poll never reaches the unpacker below
    const later = across(
      packer.pack([{ device: "plc1", tag: "temp", value: 1, quality: "good", readTime: 1 }]),
    );
    expect(() => new SampleUnpacker().unpack(later)).toThrow(/name number \d+ was never sent/);
  });
});
