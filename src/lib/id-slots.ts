/**
 * Values under the integer ids 1..capacity, handed out in rotation, in one array allocated
 * once: a hot path's table of what is in flight (issue 12).
 *
 * Why not a Map: V8 replaces a Map's hash table as entries come and go (it grows, shrinks and
 * compacts it), and the table it replaced keeps a pointer to its successor and to the entries
 * it held. Once one table of a long-lived Map reached the old generation, every later one and
 * every value they held was moved there too: the scavenger takes pointers out of old objects
 * as roots, dead or not, until the next full collection. At 10,000 events/s that was megabytes
 * a second of records promoted and a full collection every second or so. Here a slot is
 * emptied the moment its value leaves, and the array is never replaced.
 */
export class IdSlots<V> {
  #values: (V | undefined)[];
  #size = 0;
  #next = 1;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity}`);
    // slot 0 is never used: ids start at 1
    this.#values = new Array<V | undefined>(capacity + 1).fill(undefined);
  }

  get capacity(): number {
    return this.#values.length - 1;
  }

  get size(): number {
    return this.#size;
  }

  /** Puts `value` under the next free id in rotation; undefined when every id is taken. */
  add(value: V): number | undefined {
    const capacity = this.capacity;
    if (this.#size >= capacity) return undefined;
    let id = this.#next;
    while (this.#values[id] !== undefined) id = id >= capacity ? 1 : id + 1;
    this.#values[id] = value;
    this.#size++;
    this.#next = id >= capacity ? 1 : id + 1;
    return id;
  }

  get(id: number): V | undefined {
    return id >= 1 && id <= this.capacity ? this.#values[id] : undefined;
  }

  /**
   * Takes the value out of `id`: undefined when the id is free (or out of range), or, with
   * `expected`, when it holds another value (the id was taken out and handed out again).
   */
  take(id: number, expected?: V): V | undefined {
    const value = this.get(id);
    if (value === undefined || (expected !== undefined && value !== expected)) return undefined;
    this.#values[id] = undefined;
    this.#size--;
    return value;
  }

  /**
   * More ids (`capacity` at least the current one): the values keep their ids. The old array
   * is emptied, so that nothing it held is kept by it (see above).
   */
  grow(capacity: number): void {
    if (capacity <= this.capacity) return;
    const values = new Array<V | undefined>(capacity + 1).fill(undefined);
    for (let id = 1; id < this.#values.length; id++) values[id] = this.#values[id];
    this.#values.fill(undefined);
    this.#values = values;
  }

  /** The values held, in the order of their ids from the oldest handed out. */
  *values(): Generator<V> {
    const capacity = this.capacity;
    for (let i = 0, id = this.#next; i < capacity; i++) {
      const value = this.#values[id];
      if (value !== undefined) yield value;
      id = id >= capacity ? 1 : id + 1;
    }
  }

  /** Takes every value out, in the order their ids were handed out (oldest first). */
  takeAll(): V[] {
    const out = [...this.values()];
    this.#values.fill(undefined);
    this.#size = 0;
    return out;
  }
}
