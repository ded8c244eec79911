// A group's recent messages in this process, with their offsets: what a join replays from (memory layer, Redis cache).
import type { HistoryPolicy, JoinFrom, JoinResult, StreamPosition } from './history';
import type { LayerMessage } from './layer';

/**
 * The tail of one group's stream: contiguous offsets `first..last` of one epoch, each with the time
 * it was recorded, bounded by the policy's `size` on append and its `ttl` on read.
 *
 * ```ts
 * const buffer = new HistoryBuffer('e1', 0, { size: 100, ttl: 3600 });
 * buffer.append(1, message, Date.now());
 * buffer.join({ since: { epoch: 'e1', offset: 0 } }); // { recovered: true, messages: [message], ... }
 * ```
 */
export class HistoryBuffer {
  private messages: LayerMessage[] = [];
  private times: number[] = [];
  private head = 0;

  constructor(
    readonly epoch: string,
    /** The offset of the newest message recorded (0 before any). */
    public last: number,
    public policy: HistoryPolicy,
  ) {}

  get position(): StreamPosition {
    return { epoch: this.epoch, offset: this.last };
  }

  /** Appends the message recorded as `offset`; the caller guarantees `offset === last + 1`. */
  append(offset: number, message: LayerMessage, at: number): void {
    this.messages.push(message);
    this.times.push(at);
    this.last = offset;
    const over = this.size - this.policy.size;
    if (over > 0) this.drop(over);
  }

  /** What a join from `from` gets now (ttl applied); the caller adds the member in the same tick. */
  join(from: JoinFrom, now = Date.now()): JoinResult {
    this.expire(now);
    const position = this.position;
    if ('since' in from) {
      const { epoch, offset } = from.since;
      // Covered when the same epoch and every offset after `offset` is still held (or none is missing).
      const first = this.last - this.size + 1;
      if (epoch !== this.epoch || offset > this.last || offset + 1 < first) return { recovered: false, messages: [], position };
      return { recovered: true, messages: this.messages.slice(this.head + (offset + 1 - first)), position };
    }
    const count = Math.min(from.last, this.size);
    return { recovered: true, messages: this.messages.slice(this.messages.length - count), position };
  }

  private get size(): number {
    return this.messages.length - this.head;
  }

  /** Drops messages older than the ttl from the front. */
  private expire(now: number): void {
    const oldest = now - this.policy.ttl * 1000;
    let n = 0;
    while (this.head + n < this.times.length && this.times[this.head + n] < oldest) n++;
    if (n > 0) this.drop(n);
  }

  private drop(n: number): void {
    this.head += n;
    if (this.head > 64 && this.head * 2 > this.messages.length) {
      this.messages = this.messages.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}
