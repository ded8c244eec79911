// The list layer's record of this process's own group memberships, so Redis can be told them again.

/** What one host must be told on its return: discards made while it was down, memberships to re-add. */
export interface MembershipRestore {
  /** group -> channels to ZREM. */
  discards: Array<[group: string, channels: string[]]>;
  /** group -> members to ZADD NX, with their original scores (seconds since the epoch). */
  members: Array<[group: string, members: Array<{ score: number; value: string }>]>;
}

/**
 * Redis holds the memberships every process (and Django) reads; this record holds the ones of this
 * process's own channels, so that a Redis that comes back empty (a restart, a failover) gets them
 * again, and so that `groupAdd`/`groupDiscard` work while Redis is down.
 *
 * ```ts
 * memberships.add('chat_lobby', channel, score);  // on groupAdd
 * const { discards, members } = memberships.takeRestore((group) => hostOf(group) === host);
 * ```
 */
export class OwnMemberships {
  /**
   * group -> channel -> score, as whole seconds since `clockStart` (relative, so it stays a small
   * integer; bench/README.md has what a membership costs).
   */
  private readonly joined = new Map<string, Map<string, number>>();
  /** group -> channels discarded while the group's host was down. */
  private readonly pendingDiscards = new Map<string, Set<string>>();
  private readonly clockStart = Math.floor(Date.now() / 1000);

  /** @param groupExpiry seconds a membership lives (the layer's `groupExpiry`). */
  constructor(private readonly groupExpiry: number) {}

  get size(): number {
    return this.joined.size + this.pendingDiscards.size;
  }

  add(group: string, channel: string, score: number): void {
    let channels = this.joined.get(group);
    if (!channels) this.joined.set(group, (channels = new Map()));
    channels.set(channel, Math.floor(score) - this.clockStart);
    const pending = this.pendingDiscards.get(group);
    if (pending?.delete(channel) && pending.size === 0) this.pendingDiscards.delete(group);
  }

  remove(group: string, channel: string): void {
    const channels = this.joined.get(group);
    if (channels?.delete(channel) && channels.size === 0) this.joined.delete(group);
  }

  has(group: string, channel: string): boolean {
    return this.joined.get(group)?.has(channel) ?? false;
  }

  /** A discard Redis did not get (its host was down): carried out by the next `takeRestore`. */
  discardLater(group: string, channel: string): void {
    let pending = this.pendingDiscards.get(group);
    if (!pending) this.pendingDiscards.set(group, (pending = new Set()));
    pending.add(channel);
  }

  /** Calls `deliver` for each live member of `group` (a group send while Redis is down). */
  forEachLive(group: string, deliver: (channel: string) => void): void {
    const channels = this.joined.get(group);
    if (!channels) return;
    const oldest = this.oldestLive();
    for (const [channel, score] of channels) if (score >= oldest) deliver(channel);
  }

  /**
   * What a host that is back must be told, for the groups `onHost` accepts: its pending discards
   * (taken: put them back with `putBack` if they could not be sent) and its live memberships (kept).
   * Expired memberships are dropped from the record on the way.
   */
  takeRestore(onHost: (group: string) => boolean): MembershipRestore {
    const restore: MembershipRestore = { discards: [], members: [] };
    for (const [group, channels] of this.pendingDiscards) {
      if (!onHost(group)) continue;
      restore.discards.push([group, [...channels]]);
      this.pendingDiscards.delete(group);
    }
    const oldest = this.oldestLive();
    for (const [group, channels] of this.joined) {
      if (!onHost(group)) continue;
      const members: Array<{ score: number; value: string }> = [];
      for (const [channel, score] of channels) {
        if (score < oldest) channels.delete(channel);
        else members.push({ score: this.clockStart + score, value: channel });
      }
      if (members.length === 0) this.joined.delete(group);
      else restore.members.push([group, members]);
    }
    return restore;
  }

  /** Discards from a restore that failed, unless the channel joined the group again since. */
  putBack(discards: MembershipRestore['discards']): void {
    for (const [group, channels] of discards) {
      for (const channel of channels) if (!this.has(group, channel)) this.discardLater(group, channel);
    }
  }

  clear(): void {
    this.joined.clear();
    this.pendingDiscards.clear();
  }

  private oldestLive(): number {
    return Math.floor(Date.now() / 1000) - this.groupExpiry - this.clockStart;
  }
}
