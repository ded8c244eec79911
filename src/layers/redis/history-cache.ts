// The per-group cache of recent history in one process: one Redis read serves a storm of joins.
import { HistoryBuffer } from '../history-buffer';
import { EPOCH_KEY, OFFSET_KEY, type HistoryPolicy, type JoinFrom, type JoinResult } from '../history';
import type { LayerMessage } from '../layer';

/** One read of a group's stream: its epoch, latest offset, and the kept messages (oldest first) with their times. */
export interface HistorySnapshot {
  epoch: string;
  offset: number;
  entries: Array<{ at: number; message: LayerMessage }>;
}

/** One group's cache: loading (live messages buffered) until the read is merged, then ready. */
interface GroupCache {
  buffer: HistoryBuffer | null;
  /** Live messages that arrived while the read was on its way. */
  pending: LayerMessage[];
  loading: Promise<void> | null;
}

/**
 * While a group's subscription lives, the first `groupJoin` in the process creates its cache:
 * live messages are buffered, the stream is read once, the two are merged by offset, and from then
 * on each live message is appended as it arrives (`observe`, called before the members get it).
 * Joins are served from the cache synchronously, so a member added in the same tick gets live
 * messages from exactly `position.offset + 1`. A gap or an epoch change in the live offsets, a
 * reconnect (`invalidateAll`) or the end of the subscription (`drop`) forgets the cache; the next
 * join reads again.
 */
export class HistoryCaches {
  private readonly groups = new Map<string, GroupCache>();
  private readCount = 0;

  /**
   * @param read one consistent read of the group's stream
   * @param barrier resolves once every message Redis had published to this process's subscription of
   * the group before it was called has arrived (a round trip on the subscriber connection: PING, or
   * SSUBSCRIBE in the group's slot), so none that the read already holds is still on its way.
   */
  constructor(
    private readonly read: (group: string) => Promise<HistorySnapshot>,
    private readonly barrier: (group: string) => Promise<void>,
  ) {}

  /** Stream reads so far (one per group and process, plus one per invalidation). */
  get reads(): number {
    return this.readCount;
  }

  has(group: string): boolean {
    return this.groups.has(group);
  }

  /** Resolves once the group's cache is ready (reading the stream if nobody else is). */
  async load(group: string, policy: HistoryPolicy): Promise<void> {
    let cache = this.groups.get(group);
    if (!cache) this.groups.set(group, (cache = { buffer: null, pending: [], loading: null }));
    if (cache.buffer) return;
    if (!cache.loading) {
      const entry = cache;
      entry.loading = this.fill(group, entry, policy).finally(() => {
        entry.loading = null;
      });
    }
    await cache.loading;
  }

  /** The join from a ready cache, or null when it was forgotten since `load` resolved (load again). */
  join(group: string, from: JoinFrom, policy: HistoryPolicy): JoinResult | null {
    const buffer = this.groups.get(group)?.buffer;
    if (!buffer) return null;
    buffer.policy = policy;
    return buffer.join(from);
  }

  /** A live message of `group`, before its local members get it. */
  observe(group: string, message: LayerMessage): void {
    const cache = this.groups.get(group);
    if (!cache) return;
    const offset = message[OFFSET_KEY];
    // A channels_redis (Django) group send: delivered, not recorded, no offset.
    if (typeof offset !== 'number') return;
    if (!cache.buffer) {
      cache.pending.push(message);
      return;
    }
    const buffer = cache.buffer;
    if (message[EPOCH_KEY] === buffer.epoch && offset === buffer.last + 1) buffer.append(offset, message, Date.now());
    else if (message[EPOCH_KEY] !== buffer.epoch || offset > buffer.last) this.groups.delete(group); // a gap or a new epoch
  }

  /** The group's subscription ended: its cache can no longer follow the stream. */
  drop(group: string): void {
    this.groups.delete(group);
  }

  /** After a reconnect messages may have been missed: every cache reads again on its next join. */
  invalidateAll(): void {
    this.groups.clear();
  }

  /** Reads the stream and merges the live messages buffered meanwhile; leaves the cache unready when it was forgotten. */
  private async fill(group: string, cache: GroupCache, policy: HistoryPolicy): Promise<void> {
    this.readCount++;
    const { epoch, offset, entries } = await this.read(group);
    // Messages up to `offset` published after the SUBSCRIBE may still be in flight on the subscriber
    // connection: once they are in `pending` they are merged below, and none can arrive after ready
    // (where a member joined at `offset` would get it a second time).
    await this.barrier(group);
    if (this.groups.get(group) !== cache) return; // forgotten meanwhile: the join loads again
    let buffer = new HistoryBuffer(epoch, 0, policy);
    for (const { at, message } of entries) {
      const recorded = message[OFFSET_KEY] as number;
      // The stream only loses its oldest entries, so this holds; a hole would restart the kept range.
      if (recorded !== buffer.last + 1) buffer = new HistoryBuffer(epoch, recorded - 1, policy);
      buffer.append(recorded, message, at);
    }
    if (buffer.last !== offset) buffer = new HistoryBuffer(epoch, offset, policy);
    // Live messages of this epoch after the snapshot were all published after the SUBSCRIBE: contiguous.
    for (const message of cache.pending) {
      const recorded = message[OFFSET_KEY] as number;
      if (message[EPOCH_KEY] !== epoch || recorded <= buffer.last) continue;
      if (recorded !== buffer.last + 1) {
        this.groups.delete(group); // the join loads again
        return;
      }
      buffer.append(recorded, message, Date.now());
    }
    cache.pending = [];
    cache.buffer = buffer;
  }
}
