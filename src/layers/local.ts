// Local delivery, shared by every layer: per-channel queues, listeners and group membership in this process.
import { type CapacityRule, LayerClosed, type LayerMessage, type LayerOptions, type MessageListener, capacityRule } from './layer';
import { LayerStats } from './stats';

/** The shared empty array; never pushed to (see ChannelState.push and wait). */
const NONE: never[] = Object.freeze([]) as unknown as never[];

interface Waiter {
  resolve(message: LayerMessage): void;
  reject(error: Error): void;
}

/** One channel's state. Queued messages carry their expiry time; expiry is checked lazily. */
class ChannelState {
  // Arrays are shared empty ones until first used.
  messages: LayerMessage[] = NONE;
  expiresAt: number[] = NONE;
  head = 0;
  waiters: Waiter[] = NONE;

  push(message: LayerMessage, expiresAt: number): void {
    if (this.messages === NONE) {
      this.messages = [];
      this.expiresAt = [];
    }
    this.messages.push(message);
    this.expiresAt.push(expiresAt);
  }

  wait(waiter: Waiter): void {
    if (this.waiters === NONE) this.waiters = [];
    this.waiters.push(waiter);
  }

  get size(): number {
    return this.messages.length - this.head;
  }

  dropExpired(now: number): void {
    while (this.head < this.messages.length && this.expiresAt[this.head] <= now) this.head++;
    if (this.head > 64 && this.head * 2 > this.messages.length) this.compact();
  }

  take(): LayerMessage {
    const message = this.messages[this.head++];
    if (this.head === this.messages.length) this.compact();
    return message;
  }

  private compact(): void {
    if (this.messages === NONE) return;
    this.messages = this.messages.slice(this.head);
    this.expiresAt = this.expiresAt.slice(this.head);
    this.head = 0;
  }

  get idle(): boolean {
    return this.size === 0 && this.waiters.length === 0;
  }
}

export interface LocalChannelsOptions {
  capacity: number;
  /** Capacity by channel-name pattern, first match wins (see LayerOptions). Default none. */
  channelCapacity?: LayerOptions['channelCapacity'];
  /** Seconds. */
  expiry: number;
  /** Seconds. */
  groupExpiry: number;
}

/**
 * The in-process half of every channel layer (Phoenix.PubSub's "local broadcast"): a backend only
 * moves bytes between processes and calls `deliver` / `deliverToGroup` here.
 */
export class LocalChannels {
  /** Queues and waiting receivers; a listened channel (one per connection) has none. */
  private readonly channels = new Map<string, ChannelState>();
  private readonly listeners = new Map<string, MessageListener>();
  /**
   * group -> channel -> membership expiry, in tenths of a second since `clockStart` (relative, so it
   * stays a small integer for years of uptime; bench/README.md has what a membership costs).
   */
  private readonly groups = new Map<string, Map<string, number>>();
  private readonly clockStart = Date.now();
  private closed = false;
  private sinceSweep = 0;
  /** The layer's counts (`ChannelLayer.stats`): deliveries are counted here, where they happen. */
  readonly stats = new LayerStats();

  /** Queue capacity of a channel: `capacity`, or the first `channelCapacity` rule its name matches. */
  private readonly capacityOf: CapacityRule;

  constructor(private readonly options: LocalChannelsOptions) {
    this.capacityOf = capacityRule(options);
  }

  /** Hand `message` to the channel's listener, a waiting receiver or its queue; false when full. */
  deliver(channel: string, message: LayerMessage): boolean {
    const stats = this.stats;
    const listener = this.listeners.get(channel);
    if (listener !== undefined) {
      if (listener.offer(message)) {
        stats.delivered++;
        return true;
      }
      stats.mailboxDrops++;
      return false;
    }
    const state = this.channels.get(channel);
    if (state && state.waiters.length > 0) {
      state.waiters.shift()!.resolve(message);
      stats.delivered++;
      return true;
    }
    const now = Date.now();
    if (++this.sinceSweep >= 10_000) this.sweep(now);
    const target = state ?? this.create(channel);
    target.dropExpired(now);
    if (target.size >= this.capacityOf(channel)) return false;
    target.push(message, now + this.options.expiry * 1000);
    stats.delivered++;
    return true;
  }

  /**
   * Deliver to every live local member of `group`; full members are skipped (Channels' rule).
   * Returns how many were skipped, for the layer to count: a skip is never silent.
   */
  deliverToGroup(group: string, message: LayerMessage): number {
    const members = this.groups.get(group);
    if (!members) return 0;
    const now = this.tenths();
    let skipped = 0;
    for (const [channel, expiresAt] of members) {
      if (expiresAt <= now) {
        members.delete(channel);
        continue;
      }
      if (!this.deliver(channel, message)) skipped++;
    }
    if (members.size === 0) this.groups.delete(group);
    return skipped;
  }

  receive(channel: string): Promise<LayerMessage> {
    if (this.closed) return Promise.reject(new LayerClosed());
    const state = this.channels.get(channel) ?? this.create(channel);
    state.dropExpired(Date.now());
    if (state.size > 0) return Promise.resolve(state.take());
    return new Promise((resolve, reject) => state.wait({ resolve, reject }));
  }

  listen(channel: string, listener: MessageListener): void {
    if (this.listeners.has(channel)) throw new Error(`channel ${channel} already has a listener`);
    this.listeners.set(channel, listener);
    // Messages that arrived before the listener go to it first, in order.
    const state = this.channels.get(channel);
    if (!state) return;
    state.dropExpired(Date.now());
    while (state.size > 0) listener.offer(state.take());
    if (state.idle) this.channels.delete(channel);
  }

  unlisten(channel: string): void {
    this.listeners.delete(channel);
  }

  /** Adds the membership; returns true when it is the group's first local member. */
  groupAdd(group: string, channel: string): boolean {
    let members = this.groups.get(group);
    const first = members === undefined;
    if (!members) this.groups.set(group, (members = new Map()));
    members.set(channel, Math.ceil(this.tenths() + this.options.groupExpiry * 10));
    return first;
  }

  /** Removes the membership; returns true when the group has no local member left. */
  groupDiscard(group: string, channel: string): boolean {
    const members = this.groups.get(group);
    if (!members) return false;
    members.delete(channel);
    if (members.size > 0) return false;
    this.groups.delete(group);
    return true;
  }

  hasGroup(group: string): boolean {
    return this.groups.has(group);
  }

  /** Drops all queues and groups; listeners and waiting receivers stay attached. */
  flush(): void {
    for (const [name, state] of this.channels) {
      state.messages = NONE;
      state.expiresAt = NONE;
      state.head = 0;
      if (state.idle) this.channels.delete(name);
    }
    this.groups.clear();
  }

  close(): void {
    this.closed = true;
    const error = new LayerClosed();
    for (const state of this.channels.values()) for (const waiter of state.waiters) waiter.reject(error);
    this.channels.clear();
    this.listeners.clear();
    this.groups.clear();
  }

  private tenths(): number {
    return (Date.now() - this.clockStart) / 100;
  }

  private create(channel: string): ChannelState {
    const state = new ChannelState();
    this.channels.set(channel, state);
    return state;
  }

  /** Frees queues whose messages all expired, so channels nobody reads do not pile up. */
  private sweep(now: number): void {
    this.sinceSweep = 0;
    for (const [name, state] of this.channels) {
      state.dropExpired(now);
      if (state.idle) this.channels.delete(name);
    }
  }
}
