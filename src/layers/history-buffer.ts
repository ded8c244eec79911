// A group's recent messages in this process, with their offsets: what a join replays from (memory layer, Redis cache).
import { type HistoryPolicy, type JoinFrom, type JoinResult, POSITION_GRACE_SECONDS, type StreamPosition } from './history';
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
  /** When the newest message was recorded (the buffer made, before any): how long the group has been idle. */
  private recordedAt: number;

  constructor(
    readonly epoch: string,
    /** The offset of the newest message recorded (0 before any). */
    public last: number,
    public policy: HistoryPolicy,
    now = Date.now(),
  ) {
    this.recordedAt = now;
  }

  get position(): StreamPosition {
    return { epoch: this.epoch, offset: this.last };
  }

  /** Appends the message recorded as `offset`; the caller guarantees `offset === last + 1`. */
  append(offset: number, message: LayerMessage, at: number): void {
    this.messages.push(message);
    this.times.push(at);
    this.last = offset;
    this.recordedAt = at;
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

  /**
   * Lets go of what the ttl has expired, so a group nobody joins does not hold its messages; true once
   * the group has been idle past the ttl and the position's grace as well, when the whole buffer can go.
   */
  sweep(now = Date.now()): boolean {
    this.expire(now);
    return this.size === 0 && now - this.recordedAt > (this.policy.ttl + POSITION_GRACE_SECONDS) * 1000;
  }

  /** Messages held now (what the ttl has not yet dropped may still count). */
  get size(): number {
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
    if (this.head === this.messages.length || (this.head > 64 && this.head * 2 > this.messages.length)) {
      this.messages = this.messages.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}
