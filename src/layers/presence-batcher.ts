// Presence diffs for this process's members: changes merged per group and interval, one diff object per group, shared by every backend.
import type { LayerMessage } from './layer';
import type { PresenceDiff, PresenceMember } from './presence';

/** Hands a diff to one channel (LocalChannels.deliver); false when the channel is full. */
export type DiffDelivery = (channel: string, message: LayerMessage) => boolean;

/**
 * A join pending in the current interval. `keep`: its leave must still travel if it leaves within
 * the interval, because someone may have seen it (it had left and rejoined, or a snapshot read
 * meanwhile may show it).
 */
interface PendingJoin {
  member: PresenceMember;
  keep: boolean;
}

/** One group as this process sees it: its local members (the diff's readers) and the interval's changes. */
class GroupBatch {
  /** channel -> this process's member on it. */
  readonly watchers = new Map<string, PresenceMember>();
  readonly joins = new Map<string, PendingJoin>();
  readonly leaves = new Map<string, PresenceMember>();
  /** Ids of members whose join snapshot is being read (Redis: between the request and its reply). */
  readonly readers = new Set<string>();
  /**
   * id -> member: whom this process's members have been shown (snapshots, then changes), when the
   * backend can miss changes and must reconcile (Redis, after an outage); null otherwise.
   */
  readonly shown: Map<string, PresenceMember> | null;
  dirty = false;

  constructor(
    readonly group: string,
    keepsShown: boolean,
  ) {
    this.shown = keepsShown ? new Map() : null;
  }

  /** Whether a snapshot being read by someone other than `id` may show `id`. */
  seenByOthers(id: string): boolean {
    return this.readers.size > (this.readers.has(id) ? 1 : 0);
  }
}

/**
 * Merges the presence changes of each group (from this process or, through the backend, any
 * other) over `interval` ms, then hands every local member of the group the same `PresenceDiff`:
 * at most one per group per interval. A member that joined and left within the interval appears in
 * neither list (unless a snapshot read meanwhile may show it: then its leave travels). A member's
 * own join is never in its diffs (its snapshot holds it). One timer for all groups, armed only
 * while some group has changes.
 */
export class PresenceBatcher {
  private readonly groups = new Map<string, GroupBatch>();
  private dirty: GroupBatch[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** Diffs a full channel could not take (counted by the layer with its other skips). */
  skipped = 0;

  /** This process's members over every group (the `channelkit_presence_members` gauge). */
  members = 0;

  /**
   * `reconciles`: the backend may miss changes (a pub/sub outage) and calls reconcile() with the
   * group's members once back; the batcher then keeps, per group, whom its members have been shown.
   */
  constructor(
    private readonly interval: number,
    private readonly deliver: DiffDelivery,
    private readonly reconciles = false,
  ) {}

  /**
   * Makes `member` the member on `channel` in `group` (its diffs start now). Returns the member the
   * channel had there before, if any (the caller removes it from the backend).
   */
  watch(group: string, channel: string, member: PresenceMember): PresenceMember | undefined {
    let batch = this.groups.get(group);
    if (!batch) this.groups.set(group, (batch = new GroupBatch(group, this.reconciles)));
    const previous = batch.watchers.get(channel);
    batch.watchers.set(channel, member);
    if (previous === undefined) this.members++;
    return previous;
  }

  /** Ends `channel`'s membership of `group`; returns its member, or undefined when it had none. */
  unwatch(group: string, channel: string): PresenceMember | undefined {
    const batch = this.groups.get(group);
    const member = batch?.watchers.get(channel);
    if (!batch || !member) return undefined;
    batch.watchers.delete(channel);
    this.members--;
    if (batch.watchers.size === 0 && batch.readers.size === 0) this.groups.delete(group);
    return member;
  }

  /** This process's members of `group`, by channel (empty when none). */
  membersOf(group: string): ReadonlyMap<string, PresenceMember> {
    return this.groups.get(group)?.watchers ?? EMPTY;
  }

  /** Every group with local members. */
  watchedGroups(): IterableIterator<string> {
    return this.groups.keys();
  }

  /** `reader`'s snapshot of `group` is being read: joins meanwhile may show in it. */
  beginSnapshot(group: string, reader: string): void {
    this.groups.get(group)?.readers.add(reader);
  }

  /** `reader` has its snapshot: every join pending now may be in it, so their leaves must travel. */
  endSnapshot(group: string, reader: string): void {
    const batch = this.groups.get(group);
    if (!batch) return;
    batch.readers.delete(reader);
    for (const [id, pending] of batch.joins) if (id !== reader) pending.keep = true;
    if (batch.watchers.size === 0 && batch.readers.size === 0) this.groups.delete(group);
  }

  /**
   * A local member's join snapshot of `group`: now shown to it. A member already known is kept as
   * known (a change that came in before the snapshot's reply is newer than it).
   */
  showed(group: string, snapshot: readonly PresenceMember[]): void {
    const shown = this.groups.get(group)?.shown;
    if (!shown) return;
    for (const member of snapshot) if (!shown.has(member.id)) shown.set(member.id, member);
  }

  /**
   * `group`'s members as the backend has them now, after changes may have been missed: every member
   * new or changed joins and, with `leaves`, every member shown here and no longer there leaves (as
   * diffs, as any change).
   */
  reconcile(group: string, members: readonly PresenceMember[], leaves: boolean): void {
    const shown = this.groups.get(group)?.shown;
    if (!shown) return;
    if (leaves) {
      const now = new Set(members.map((member) => member.id));
      for (const member of [...shown.values()]) if (!now.has(member.id)) this.left(group, member);
    }
    for (const member of members) {
      const before = shown.get(member.id);
      if (!before || before.name !== member.name) this.joined(group, member);
    }
  }

  /** `member` joined `group` (in any process). Ignored when no local member watches the group. */
  joined(group: string, member: PresenceMember): void {
    const batch = this.groups.get(group);
    if (!batch) return;
    batch.shown?.set(member.id, member);
    const rejoin = batch.leaves.delete(member.id);
    const keep = rejoin || (batch.joins.get(member.id)?.keep ?? false) || batch.seenByOthers(member.id);
    batch.joins.set(member.id, { member, keep });
    this.mark(batch);
  }

  /**
   * `member` left `group` (in any process). A join of this interval nobody can have seen cancels
   * (neither list shows the member); otherwise the leave replaces it.
   */
  left(group: string, member: PresenceMember): void {
    const batch = this.groups.get(group);
    if (!batch) return;
    batch.shown?.delete(member.id);
    const pending = batch.joins.get(member.id);
    if (pending) batch.joins.delete(member.id);
    if (!pending || pending.keep || batch.seenByOthers(member.id)) batch.leaves.set(member.id, member);
    this.mark(batch);
  }

  /** Sends every pending diff now (the timer does this each interval). */
  flush(): void {
    this.timer = null;
    const dirty = this.dirty;
    this.dirty = [];
    for (const batch of dirty) {
      batch.dirty = false;
      if (batch.joins.size === 0 && batch.leaves.size === 0) continue;
      const joins: PresenceMember[] = [];
      for (const pending of batch.joins.values()) joins.push(pending.member);
      const diff: PresenceDiff = { type: 'presence.diff', group: batch.group, joins, leaves: [...batch.leaves.values()] };
      // One object for every local member, as a group message is decoded once per process; only a
      // member whose own join is in it (its first diff) gets a copy without it: its snapshot had it.
      for (const [channel, member] of batch.watchers) {
        const message = batch.joins.has(member.id) ? withoutOwnJoin(diff, member.id) : diff;
        if (message && !this.deliver(channel, message as unknown as LayerMessage)) this.skipped++;
      }
      batch.joins.clear();
      batch.leaves.clear();
    }
  }

  /** Forgets every group and pending change. */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.dirty = [];
    this.groups.clear();
    this.members = 0;
  }

  private mark(batch: GroupBatch): void {
    if (batch.dirty) return;
    batch.dirty = true;
    this.dirty.push(batch);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.interval);
      this.timer.unref();
    }
  }
}

/** `diff` without `id`'s join; null when nothing else is left. */
function withoutOwnJoin(diff: PresenceDiff, id: string): PresenceDiff | null {
  const joins = diff.joins.filter((member) => member.id !== id);
  return joins.length === 0 && diff.leaves.length === 0 ? null : { ...diff, joins };
}

const EMPTY: ReadonlyMap<string, PresenceMember> = new Map();
