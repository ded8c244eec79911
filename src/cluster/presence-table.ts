// The primary's presence table for the workers layer: every group's members, and which worker holds each.
import type { PresenceMember } from '../layers/presence';

interface GroupPresence {
  /** member id -> the member and the worker whose connection it is. */
  readonly members: Map<string, { member: PresenceMember; worker: number }>;
  /** worker -> how many of the group's members it holds: the workers that hear the group's changes. */
  readonly workers: Map<number, number>;
}

/**
 * One table for all workers, so a snapshot is whole and a worker's crash takes exactly its members
 * out. Changes are told to the workers that hold members of the group (they have watchers there);
 * counting members per worker keeps that set without a scan, whatever the room's size.
 *
 * ```ts
 * const table = new PresenceTable();
 * table.join('chat_lobby', { id: 'a1', name: 'Alice' }, 1);
 * table.workersOf('chat_lobby'); // [1]
 * table.dropWorker(1);           // [['chat_lobby', { id: 'a1', name: 'Alice' }]]
 * ```
 */
export class PresenceTable {
  private readonly groups = new Map<string, GroupPresence>();
  /** worker -> group -> ids of its members there, to take them out when it goes. */
  private readonly byWorker = new Map<number, Map<string, Set<string>>>();

  /** Adds (or replaces: the same id again) `member` of `group`, held by `worker`. */
  join(group: string, member: PresenceMember, worker: number): void {
    let presence = this.groups.get(group);
    if (!presence) this.groups.set(group, (presence = { members: new Map(), workers: new Map() }));
    const before = presence.members.get(member.id);
    if (before) this.untrack(group, presence, member.id, before.worker);
    presence.members.set(member.id, { member, worker });
    presence.workers.set(worker, (presence.workers.get(worker) ?? 0) + 1);
    let groups = this.byWorker.get(worker);
    if (!groups) this.byWorker.set(worker, (groups = new Map()));
    let ids = groups.get(group);
    if (!ids) groups.set(group, (ids = new Set()));
    ids.add(member.id);
  }

  /** Removes member `id` of `group` if `worker` holds it; returns it, or undefined. */
  leave(group: string, id: string, worker: number): PresenceMember | undefined {
    const presence = this.groups.get(group);
    const entry = presence?.members.get(id);
    if (!presence || !entry || entry.worker !== worker) return undefined;
    presence.members.delete(id);
    this.untrack(group, presence, id, worker);
    if (presence.members.size === 0) this.groups.delete(group);
    return entry.member;
  }

  list(group: string): PresenceMember[] {
    const presence = this.groups.get(group);
    return presence ? [...presence.members.values()].map((entry) => entry.member) : [];
  }

  /** The workers holding members of `group`. */
  workersOf(group: string): Iterable<number> {
    return this.groups.get(group)?.workers.keys() ?? [];
  }

  /** Takes every member `worker` held out of the table; returns them with their groups. */
  dropWorker(worker: number): Array<[string, PresenceMember]> {
    const groups = this.byWorker.get(worker);
    if (!groups) return [];
    const dropped: Array<[string, PresenceMember]> = [];
    for (const [group, ids] of groups) {
      for (const id of [...ids]) {
        const member = this.leave(group, id, worker);
        if (member) dropped.push([group, member]);
      }
    }
    this.byWorker.delete(worker);
    return dropped;
  }

  private untrack(group: string, presence: GroupPresence, id: string, worker: number): void {
    const held = (presence.workers.get(worker) ?? 1) - 1;
    if (held > 0) presence.workers.set(worker, held);
    else presence.workers.delete(worker);
    const ids = this.byWorker.get(worker)?.get(group);
    ids?.delete(id);
    if (ids?.size === 0) this.byWorker.get(worker)!.delete(group);
  }
}
