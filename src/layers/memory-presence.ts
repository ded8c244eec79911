// Presence for the in-memory layer: the members of each group in this one process, with batched diffs.
import { type DiffDelivery, PresenceBatcher } from './presence-batcher';
import { type PresenceMember, presenceMember } from './presence';

/**
 * Every member of every group, in one process. A join or leave is one map operation plus one
 * pending change in the batcher; diffs reach members as with the Redis layers.
 */
export class MemoryPresence {
  /** group -> member id -> member. */
  private readonly members = new Map<string, Map<string, PresenceMember>>();
  private readonly batcher: PresenceBatcher;

  constructor(interval: number, deliver: DiffDelivery) {
    this.batcher = new PresenceBatcher(interval, deliver);
  }

  get skipped(): number {
    return this.batcher.skipped;
  }

  /** This process's members over every group (all of them: one process). */
  get localMembers(): number {
    return this.batcher.members;
  }

  join(group: string, channel: string, given: PresenceMember): PresenceMember[] {
    const member = presenceMember(given);
    const previous = this.batcher.watch(group, channel, member);
    if (previous && previous.id !== member.id) this.remove(group, previous);
    let members = this.members.get(group);
    if (!members) this.members.set(group, (members = new Map()));
    members.set(member.id, member);
    this.batcher.joined(group, member);
    const snapshot = [...members.values()];
    this.batcher.endSnapshot(group, member.id);
    return snapshot;
  }

  leave(group: string, channel: string): void {
    const member = this.batcher.unwatch(group, channel);
    if (member) this.remove(group, member);
  }

  list(group: string): PresenceMember[] {
    const members = this.members.get(group);
    return members ? [...members.values()] : [];
  }

  count(group: string): number {
    return this.members.get(group)?.size ?? 0;
  }

  clear(): void {
    this.members.clear();
    this.batcher.clear();
  }

  private remove(group: string, member: PresenceMember): void {
    const members = this.members.get(group);
    if (!members?.delete(member.id)) return;
    if (members.size === 0) this.members.delete(group);
    this.batcher.left(group, member);
  }
}
