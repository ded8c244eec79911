// Local delivery, shared by every layer: per-channel queues, listeners and group membership in this process.
import { type CapacityRule, LayerClosed, type LayerMessage, type LayerOptions, type MessageListener, capacityRule } from './layer';
import { LayerStats } from './stats';

/** The shared empty array; never pushed to (see ChannelQueue.push and wait). */
const NONE: never[] = Object.freeze([]) as unknown as never[];

interface Waiter {
  resolve(message: LayerMessage): void;
  reject(error: Error): void;
}

/** A channel's queue and waiting receivers. Queued messages carry their expiry time; expiry is checked lazily. */
class ChannelQueue {
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

/**
 * One channel of this process: its listener (a consumer's mailbox), or a queue for `receive()`. Groups
 * list endpoints rather than names, so a group send reaches each member's listener without a lookup
 * by name (a hash and string compare per member per message, measured at a twentieth of a fan-out).
 */
class Endpoint {
  listener: MessageListener | null = null;
  /** Made when a message must wait or a receiver does: a listened channel (one per connection) has none. */
  queue: ChannelQueue | null = null;
  /** Groups listing this endpoint: while any does, it must stay the one its name maps to. */
  memberships = 0;

  constructor(readonly name: string) {}

  get idle(): boolean {
    return this.listener === null && this.memberships === 0 && (this.queue === null || this.queue.idle);
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
  private readonly endpoints = new Map<string, Endpoint>();
  /**
   * group -> member -> membership expiry, in tenths of a second since `clockStart` (relative, so it
   * stays a small integer for years of uptime; bench/README.md has what a membership costs).
   */
  private readonly groups = new Map<string, Map<Endpoint, number>>();
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
    return this.deliverTo(this.endpoints.get(channel) ?? this.create(channel), message);
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
    for (const [member, expiresAt] of members) {
      if (expiresAt <= now) {
        members.delete(member);
        this.release(member);
        continue;
      }
      if (!this.deliverTo(member, message)) skipped++;
    }
    if (members.size === 0) this.groups.delete(group);
    return skipped;
  }

  receive(channel: string): Promise<LayerMessage> {
    if (this.closed) return Promise.reject(new LayerClosed());
    const endpoint = this.endpoints.get(channel) ?? this.create(channel);
    const queue = (endpoint.queue ??= new ChannelQueue());
    queue.dropExpired(Date.now());
    if (queue.size > 0) return Promise.resolve(queue.take());
    return new Promise((resolve, reject) => queue.wait({ resolve, reject }));
  }

  listen(channel: string, listener: MessageListener): void {
    const endpoint = this.endpoints.get(channel) ?? this.create(channel);
    if (endpoint.listener !== null) throw new Error(`channel ${channel} already has a listener`);
    endpoint.listener = listener;
    // Messages that arrived before the listener go to it first, in order.
    const queue = endpoint.queue;
    if (queue === null) return;
    queue.dropExpired(Date.now());
    while (queue.size > 0) listener.offer(queue.take());
    if (queue.idle) endpoint.queue = null;
  }

  unlisten(channel: string): void {
    const endpoint = this.endpoints.get(channel);
    if (endpoint === undefined) return;
    endpoint.listener = null;
    if (endpoint.idle) this.endpoints.delete(channel);
  }

  /** Adds the membership; returns true when it is the group's first local member. */
  groupAdd(group: string, channel: string): boolean {
    let members = this.groups.get(group);
    const first = members === undefined;
    if (!members) this.groups.set(group, (members = new Map()));
    const endpoint = this.endpoints.get(channel) ?? this.create(channel);
    const before = members.size;
    members.set(endpoint, Math.ceil(this.tenths() + this.options.groupExpiry * 10));
    if (members.size > before) endpoint.memberships++;
    return first;
  }

  /** Removes the membership; returns true when the group has no local member left. */
  groupDiscard(group: string, channel: string): boolean {
    const members = this.groups.get(group);
    if (!members) return false;
    const endpoint = this.endpoints.get(channel);
    if (endpoint !== undefined && members.delete(endpoint)) this.release(endpoint);
    if (members.size > 0) return false;
    this.groups.delete(group);
    return true;
  }

  hasGroup(group: string): boolean {
    return this.groups.has(group);
  }

  /** Drops all queues and groups; listeners and waiting receivers stay attached. */
  flush(): void {
    this.groups.clear();
    for (const [name, endpoint] of this.endpoints) {
      endpoint.memberships = 0;
      const queue = endpoint.queue;
      if (queue !== null) {
        queue.messages = NONE;
        queue.expiresAt = NONE;
        queue.head = 0;
        if (queue.idle) endpoint.queue = null;
      }
      if (endpoint.idle) this.endpoints.delete(name);
    }
  }

  close(): void {
    this.closed = true;
    const error = new LayerClosed();
    for (const endpoint of this.endpoints.values()) for (const waiter of endpoint.queue?.waiters ?? NONE) waiter.reject(error);
    this.endpoints.clear();
    this.groups.clear();
  }

  private deliverTo(endpoint: Endpoint, message: LayerMessage): boolean {
    const stats = this.stats;
    const listener = endpoint.listener;
    if (listener !== null) {
      if (listener.offer(message)) {
        stats.delivered++;
        return true;
      }
      stats.mailboxDrops++;
      return false;
    }
    const queue = endpoint.queue;
    if (queue !== null && queue.waiters.length > 0) {
      queue.waiters.shift()!.resolve(message);
      stats.delivered++;
      return true;
    }
    const now = Date.now();
    if (++this.sinceSweep >= 10_000) this.sweep(now);
    const target = queue ?? (endpoint.queue = new ChannelQueue());
    target.dropExpired(now);
    if (target.size >= this.capacityOf(endpoint.name)) return false;
    target.push(message, now + this.options.expiry * 1000);
    stats.delivered++;
    return true;
  }

  /** A group let go of `endpoint`; unlisted, unlistened and empty, it goes. */
  private release(endpoint: Endpoint): void {
    endpoint.memberships--;
    if (endpoint.idle) this.endpoints.delete(endpoint.name);
  }

  private tenths(): number {
    return (Date.now() - this.clockStart) / 100;
  }

  private create(channel: string): Endpoint {
    const endpoint = new Endpoint(channel);
    this.endpoints.set(channel, endpoint);
    return endpoint;
  }

  /** Frees queues whose messages all expired, so channels nobody reads do not pile up. */
  private sweep(now: number): void {
    this.sinceSweep = 0;
    for (const [name, endpoint] of this.endpoints) {
      const queue = endpoint.queue;
      if (queue === null) continue;
      queue.dropExpired(now);
      if (!queue.idle) continue;
      endpoint.queue = null;
      if (endpoint.idle) this.endpoints.delete(name);
    }
  }
}
