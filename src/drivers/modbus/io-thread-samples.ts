/**
 * A poll's samples as they cross from a device's I/O thread to the main thread (io-thread.ts),
 * in columns (issue 12: at 10,000 registers the main thread took 100,000 samples a second as
 * cloned objects, each with copies of its device and tag names: the clone alone was 3.9 % of the
 * process's CPU and a tenth of its allocations, and the engine's maps hashed the fresh names).
 *
 * Device and tag names go by number. Each name is sent once, with the first samples that use
 * it, in `names`; the receiving end appends them to its table in the order they came. A port
 * delivers messages in order and each thread has one packer and the host one unpacker per
 * thread, so both tables agree as long as the host unpacks every packed message of the thread
 * (io-thread.ts does, before it looks at anything else of the message). The unpacked samples
 * share the table's strings, the same ones for every poll.
 *
 * What a sample has besides device, tag, value, quality and readTime (reason, reasonCode,
 * sourceTime, snapshotRead) goes beside it in `extras`; `raw` does not cross (io-thread-wire.ts).
 */
import type { Quality, TagSample, TagValue } from "../../events/sample.ts";

/** Qualities by their number on the wire. */
const QUALITIES: readonly Quality[] = ["good", "uncertain", "bad", "stale"];
const QUALITY_NUMBER: Readonly<Record<Quality, number>> = {
  good: 0,
  uncertain: 1,
  bad: 2,
  stale: 3,
};

type Extras = Pick<TagSample, "reason" | "reasonCode" | "sourceTime" | "snapshotRead">;

export interface PackedSamples {
  /** Names used for the first time, numbered on from the names sent before. */
  names: string[];
  /** Per sample, three numbers: its device name, its tag name and its quality. */
  refs: Uint32Array;
  readTimes: Float64Array;
  values: TagValue[];
  /** The samples that have more, by their index. */
  extras: [index: number, extras: Extras][];
}

/** The I/O thread's end: numbers names as it first sends them. */
export class SamplePacker {
  readonly #numbers = new Map<string, number>();

  pack(samples: readonly TagSample[]): PackedSamples {
    const names: string[] = [];
    const refs = new Uint32Array(samples.length * 3);
    const readTimes = new Float64Array(samples.length);
    // filled by push: an array made with a length has holes, and a port clones such an array
    // key by key (V8 writes only a packed one as a dense run)
    const values: TagValue[] = [];
    const extras: [number, Extras][] = [];
    const numberOf = (name: string): number => {
      let n = this.#numbers.get(name);
      if (n === undefined) {
        n = this.#numbers.size;
        this.#numbers.set(name, n);
        names.push(name);
      }
      return n;
    };
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      refs[i * 3] = numberOf(s.device);
      refs[i * 3 + 1] = numberOf(s.tag);
      const quality = QUALITY_NUMBER[s.quality];
      // never a sample whose quality cannot cross taken for good (0) on the other side
      if (quality === undefined) throw new Error(`I/O thread samples: quality ${s.quality}`);
      refs[i * 3 + 2] = quality;
      readTimes[i] = s.readTime;
      values.push(s.value);
      const more = extrasOf(s);
      if (more !== undefined) extras.push([i, more]);
    }
    return { names, refs, readTimes, values, extras };
  }
}

/** The main thread's end, one per I/O thread: the names in the order they came. */
export class SampleUnpacker {
  readonly #names: string[] = [];

  unpack(packed: PackedSamples): TagSample[] {
    for (const name of packed.names) this.#names.push(name);
    const { refs, readTimes, values } = packed;
    const samples: TagSample[] = [];
    for (let i = 0; i < readTimes.length; i++) {
      samples.push({
        device: this.#name(refs[i * 3]!),
        tag: this.#name(refs[i * 3 + 1]!),
        value: values[i]!,
        quality: QUALITIES[refs[i * 3 + 2]!]!,
        readTime: readTimes[i]!,
      });
    }
    for (const [i, more] of packed.extras) Object.assign(samples[i]!, more);
    return samples;
  }

  #name(n: number): string {
    const name = this.#names[n];
    // the tables disagree: a bug, never a sample under another tag's name
    if (name === undefined) throw new Error(`I/O thread samples: name number ${n} was never sent`);
    return name;
  }
}

function extrasOf(s: TagSample): Extras | undefined {
  if (
    s.reason === undefined &&
    s.reasonCode === undefined &&
    s.sourceTime === undefined &&
    s.snapshotRead === undefined
  ) {
    return undefined;
  }
  const more: Extras = {};
  if (s.reason !== undefined) more.reason = s.reason;
  if (s.reasonCode !== undefined) more.reasonCode = s.reasonCode;
  if (s.sourceTime !== undefined) more.sourceTime = s.sourceTime;
  if (s.snapshotRead !== undefined) more.snapshotRead = s.snapshotRead;
  return more;
}
