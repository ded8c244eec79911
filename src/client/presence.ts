// Who is in the room: a map by connection id, from the server's snapshot and its diffs.

/** One connection in the room's presence (two tabs are two members). */
export interface PresenceMember {
  id: string;
  name?: string;
}

/** What changed, as the `presence` event carries it; `members` is the live map (copy it to keep one). */
export interface PresenceChange {
  members: ReadonlyMap<string, PresenceMember>;
  /** Members that were not there before this change. */
  joins: PresenceMember[];
  /** Members that were there and are gone. */
  leaves: PresenceMember[];
  /** True for a `presence_state` snapshot (after each connect), false for a diff. */
  snapshot: boolean;
}

/**
 * Applies `presence_state` (replaces the map: members who left while this client was away are gone)
 * and `presence_diff` (joins, then leaves, by id). Idempotent: a join of a member already there, or a
 * leave of one that is not, changes nothing and is not reported, so a diff that overlaps the snapshot
 * it follows is harmless.
 */
export class Presence {
  private readonly map = new Map<string, PresenceMember>();

  get members(): ReadonlyMap<string, PresenceMember> {
    return this.map;
  }

  snapshot(members: unknown): PresenceChange {
    const next = new Map(membersOf(members).map((member) => [member.id, member]));
    const joins = [...next.values()].filter((member) => !this.map.has(member.id));
    const leaves = [...this.map.values()].filter((member) => !next.has(member.id));
    this.map.clear();
    for (const [id, member] of next) this.map.set(id, member);
    return { members: this.map, joins, leaves, snapshot: true };
  }

  /** The change, or null when the diff changed nothing. */
  diff(joined: unknown, left: unknown): PresenceChange | null {
    const joins: PresenceMember[] = [];
    const leaves: PresenceMember[] = [];
    for (const member of membersOf(joined)) {
      if (!this.map.has(member.id)) joins.push(member);
      this.map.set(member.id, member);
    }
    for (const member of membersOf(left)) {
      const known = this.map.get(member.id);
      if (known === undefined) continue;
      this.map.delete(member.id);
      const index = joins.indexOf(known);
      if (index >= 0) joins.splice(index, 1); // joined and left in one diff: neither
      else leaves.push(known);
    }
    return joins.length === 0 && leaves.length === 0 ? null : { members: this.map, joins, leaves, snapshot: false };
  }

  /** Everyone leaves (the client closed for good); null when nobody was there. */
  clear(): PresenceChange | null {
    if (this.map.size === 0) return null;
    const leaves = [...this.map.values()];
    this.map.clear();
    return { members: this.map, joins: [], leaves, snapshot: false };
  }
}

/** The well-formed `{id, name?}` entries of a frame's list; anything else is skipped. */
function membersOf(value: unknown): PresenceMember[] {
  if (!Array.isArray(value)) return [];
  const members: PresenceMember[] = [];
  for (const entry of value as unknown[]) {
    if (entry === null || typeof entry !== 'object') continue;
    const { id, name } = entry as { id?: unknown; name?: unknown };
    if (typeof id !== 'string') continue;
    members.push(typeof name === 'string' ? { id, name } : { id });
  }
  return members;
}
