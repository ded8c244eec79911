// The in-memory channel layer: one process, no dependencies; the default for `npm start` and tests.
import { v4 as uuid4 } from 'uuid';
import { type Codec, MsgpackCodec } from './codec';
import {
  ChannelFull,
  type ChannelLayer,
  LAYER_DEFAULTS,
  type LayerHealth,
  type LayerMessage,
  type LayerOptions,
  type MessageListener,
  checkChannel,
  checkGroupSend,
  checkOpen,
  checkMembership,
  checkSend,
  validateChannelName,
  validateGroupName,
} from './layer';
import { LocalChannels } from './local';
import type { LayerStats } from './stats';
import { type HistoryPolicy, type JoinFrom, type JoinResult, HistoryNotKept, checkHistoryPattern, validateJoinFrom } from './history';
import { HistoryStore } from './history-store';
import { MemoryPresence } from './memory-presence';
import { PRESENCE_DEFAULTS, type PresenceMember } from './presence';

/**
 * Every message goes through the codec once per send (once per group send, shared by all members),
 * so a message that would not survive Redis fails here too, and no receiver sees the sender's later
 * mutations.
 */
export class InMemoryChannelLayer implements ChannelLayer {
  private readonly local: LocalChannels;
  private readonly codec: Codec = new MsgpackCodec();
  private closed = false;
  private readonly id = uuid4().replace(/-/g, '').slice(0, 12);
  private channels = 0;
  private skipped = 0;

  constructor(options: LayerOptions = {}) {
    this.local = new LocalChannels({ ...LAYER_DEFAULTS, ...options });
    this.presenceInterval = options.presenceInterval ?? PRESENCE_DEFAULTS.presenceInterval;
  }

  async send(channel: string, message: LayerMessage): Promise<void> {
    checkSend(this.closed, channel, message);
    this.local.stats.sends++;
    if (!this.local.deliver(channel, this.copy(message))) throw new ChannelFull(channel);
  }

  receive(channel: string): Promise<LayerMessage> {
    validateChannelName(channel);
    return this.local.receive(channel);
  }

  async newChannel(prefix = 'specific'): Promise<string> {
    // A random id per layer and a counter per channel: unique, and short (one name per connection).
    const name = `${prefix}.${this.id}!${(++this.channels).toString(36)}`;
    validateChannelName(name);
    return name;
  }

  async groupAdd(group: string, channel: string): Promise<void> {
    checkMembership(this.closed, group, channel);
    this.local.groupAdd(group, channel);
  }

  async groupDiscard(group: string, channel: string): Promise<void> {
    // Leaving works after close: consumers leave their groups on the way out.
    checkMembership(false, group, channel);
    this.local.groupDiscard(group, channel);
  }

  async groupSend(group: string, message: LayerMessage): Promise<void> {
    checkGroupSend(this.closed, group, message);
    this.local.stats.groupSends++;
    const policy = this.history.policies.policyFor(group);
    if (policy !== null) {
      this.skipped += this.local.deliverToGroup(group, this.history.record(group, this.copy(message), policy));
      return;
    }
    if (this.local.hasGroup(group)) this.skipped += this.local.deliverToGroup(group, this.copy(message));
  }

  async listen(channel: string, listener: MessageListener): Promise<void> {
    checkChannel(this.closed, channel);
    this.local.listen(channel, listener);
  }

  unlisten(channel: string): void {
    this.local.unlisten(channel);
  }

  async flush(): Promise<void> {
    this.local.flush();
    // History lost: each group starts a new epoch, so no `since` of before can be mistaken for one of after.
    this.history.clear();
    this.presenceState?.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.history.close();
    this.local.close();
    this.presenceState?.clear();
  }

  /** Group sends that skipped a full member (Channels' rule); counted, since the sender is not told. */
  get skippedFull(): number {
    return this.skipped + (this.presenceState?.skipped ?? 0);
  }

  get stats(): LayerStats {
    return this.local.stats;
  }

  health(): LayerHealth {
    return { state: this.closed ? 'closed' : 'up', backend: 'memory' };
  }

  // --- history and recovery: kept here (history-store.ts), an epoch per group and layer instance ---

  private readonly history = new HistoryStore();

  async setHistory(pattern: string, policy: HistoryPolicy | null): Promise<void> {
    checkOpen(this.closed);
    checkHistoryPattern(pattern);
    this.history.policies.set(pattern, policy);
  }

  async groupJoin(group: string, channel: string, from: JoinFrom): Promise<JoinResult> {
    checkMembership(this.closed, group, channel);
    validateJoinFrom(from);
    const policy = this.history.policies.policyFor(group);
    if (!policy) throw new HistoryNotKept(group);
    // Synchronous from the result to the membership: the next group send is the member's first live message.
    const result = this.history.join(group, from, policy);
    this.local.groupAdd(group, channel);
    this.local.stats.countJoin('since' in from, result.recovered);
    return result;
  }

  /** This layer reads no backend. */
  get historyReads(): number {
    return 0;
  }

  /** @internal What history holds now (for the tests of the sweep). */
  get historyFootprint(): { groups: number; messages: number } {
    return this.history.footprint;
  }

  // --- presence (memory-presence.ts): made on first use, so a layer without presence pays nothing ---
  readonly supportsPresence = true;
  private readonly presenceInterval: number;
  private presenceState: MemoryPresence | null = null;

  async presenceJoin(group: string, channel: string, member: PresenceMember): Promise<PresenceMember[]> {
    checkMembership(this.closed, group, channel);
    return this.presenceOf().join(group, channel, member);
  }

  async presenceLeave(group: string, channel: string): Promise<void> {
    checkMembership(false, group, channel);
    this.presenceState?.leave(group, channel);
  }

  async presence(group: string): Promise<PresenceMember[]> {
    checkOpen(this.closed);
    validateGroupName(group);
    return this.presenceState?.list(group) ?? [];
  }

  async presenceCount(group: string): Promise<number> {
    checkOpen(this.closed);
    validateGroupName(group);
    return this.presenceState?.count(group) ?? 0;
  }

  private presenceOf(): MemoryPresence {
    if (this.presenceState) return this.presenceState;
    this.presenceState = new MemoryPresence(this.presenceInterval, (channel, diff) => this.local.deliver(channel, diff));
    this.local.stats.presence = this.presenceState;
    return this.presenceState;
  }

  private copy(message: LayerMessage): LayerMessage {
    return this.codec.decode(this.codec.encode(message));
  }
}
