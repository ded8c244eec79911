// Group subscriptions of a Redis pub/sub layer, batched and lingering: many groups per SUBSCRIBE, and a room that empties then refills soon costs no command.
import { ErrorReply } from 'redis';

/** How the batcher reaches Redis; channels of one `keyOf` may share one command. */
export interface SubscriptionLink {
  /** The batch a channel belongs to: its host (pub/sub layer) or its hash slot (Cluster: SSUBSCRIBE takes one slot). */
  keyOf(channel: string): string | number;
  /** Whether the connection carrying `channel` takes commands now (node-redis's `isReady`). */
  ready(channel: string): boolean;
  /** One SUBSCRIBE/SSUBSCRIBE of `channels`, all of one key; settles when Redis answered for every one. */
  subscribe(channels: string[]): Promise<void>;
  /** One UNSUBSCRIBE/SUNSUBSCRIBE of `channels`, all of one key. */
  unsubscribe(channels: string[]): Promise<void>;
}

export interface SubscriptionBatcherOptions {
  /**
   * Milliseconds an unwanted subscription is kept before its UNSUBSCRIBE (see `release`); 0 sends it
   * at the end of the tick. Required here; the layers default it (PubSubLayerOptions.subscriptionLinger).
   */
  linger: number;
  /** Told when Redis answered a SUBSCRIBE with an error (an ACL, say): those groups are deaf. */
  refused?: (channels: string[], error: Error) => void;
}

/** Channels per command: one reply per channel, so a huge batch would hold the link's replies up. */
const MAX_BATCH = 1000;

/**
 * Where a subscription stands: 'waiting' for its own UNSUBSCRIBE to be answered, 'queued' for the
 * next batch, 'sent' (its SUBSCRIBE unanswered), 'live'.
 */
type State = 'waiting' | 'queued' | 'sent' | 'live';

class Subscription {
  state: State = 'queued';
  /** Bumped by `renew`: answers to a SUBSCRIBE sent before it no longer settle this subscription. */
  generation = 0;
  confirmed!: Promise<void>;
  settle!: () => void;

  constructor() {
    this.renew();
  }

  /** A new `confirmed`; whoever awaits the old one is settled with the new one. */
  renew(): void {
    const previous = this.settle as (() => void) | undefined;
    this.generation++;
    this.confirmed = new Promise<void>((resolve) => {
      this.settle = () => {
        resolve();
        previous?.();
      };
    });
  }
}

/**
 * The group subscriptions of one layer. Three things make churn (clients joining and leaving many
 * rooms) cheap in Redis commands without losing a message:
 *
 * - Batching: `acquire` queues the channel; the queue goes out at the end of the event-loop turn
 *   (setImmediate, so every join that socket I/O of one poll phase produced shares it) as one
 *   SUBSCRIBE per batch key. While a SUBSCRIBE of a key is unanswered and its connection is up,
 *   newer requests of that key wait for the answer and then go out together: under load the batches
 *   grow by themselves, and when idle a join costs no added delay but that one turn.
 * - Confirmation: `acquire` resolves once Redis answered the SUBSCRIBE that carries the channel
 *   (Redis runs one command at a time, so no PUBLISH falls between the replies of one SUBSCRIBE):
 *   a group send issued after `groupAdd` resolved is always delivered. While the connection is down
 *   it resolves at once instead (as before: callers must not wait for Redis; node-redis sends it
 *   once back, and `reassert` re-subscribes everything).
 * - Linger: `release` keeps the subscription `linger` ms before unsubscribing it; an `acquire`
 *   meanwhile takes it back at no cost (it is still live, so that join resolves at once and misses
 *   nothing). Expired subscriptions are swept together: a sweep also takes those due within the
 *   next quarter of the linger, so an unwanted subscription is held between 3/4 of `linger` and
 *   `linger` (plus event-loop delay; one released before its SUBSCRIBE was answered waits for the
 *   answer, then lingers again). An `acquire` while the channel's UNSUBSCRIBE is in flight waits for
 *   its answer and then subscribes again, so node-redis never mixes the two commands' listeners.
 */
export class SubscriptionBatcher {
  private readonly held = new Map<string, Subscription>();
  /** Released channels and when their linger ends; insertion order is deadline order. */
  private readonly lingering = new Map<string, number>();
  /** Released channels whose linger ended before their SUBSCRIBE was answered. */
  private readonly expiredUnanswered = new Set<string>();
  private readonly queue = new Map<string | number, string[]>();
  /** Per batch key: SUBSCRIBE commands not yet answered. */
  private readonly inFlight = new Map<string | number, number>();
  private readonly unsubscribing = new Map<string, Promise<void>>();
  private flushing: NodeJS.Immediate | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweepAt = Infinity;
  private closed = false;
  private readonly linger: number;
  /** Commands sent (for tests and the churn figure; Redis's INFO commandstats is the ground truth). */
  subscribeCommands = 0;
  unsubscribeCommands = 0;

  constructor(
    private readonly link: SubscriptionLink,
    private readonly options: SubscriptionBatcherOptions,
  ) {
    this.linger = options.linger;
  }

  /** Subscriptions held in Redis (or on their way there), lingering ones included. */
  get size(): number {
    return this.held.size;
  }

  /** Of `size`, those nobody wants any more, kept until their linger ends. */
  get lingeringCount(): number {
    return this.lingering.size + this.expiredUnanswered.size;
  }

  /** Wants `channel` subscribed; resolves once it is (see the class comment for a link that is down). */
  acquire(channel: string): Promise<void> {
    const existing = this.held.get(channel);
    if (existing) {
      this.lingering.delete(channel);
      this.expiredUnanswered.delete(channel);
      return existing.confirmed;
    }
    const subscription = new Subscription();
    this.held.set(channel, subscription);
    const unsubscribing = this.unsubscribing.get(channel);
    if (unsubscribing) {
      subscription.state = 'waiting';
      void unsubscribing.then(() => {
        if (this.held.get(channel) === subscription && subscription.state === 'waiting') this.enqueue(channel, subscription);
      });
    } else this.enqueue(channel, subscription);
    return subscription.confirmed;
  }

  /** No longer wants `channel`: unsubscribed once its linger ends, unless acquired again meanwhile. */
  release(channel: string): void {
    if (this.closed || !this.held.has(channel) || this.lingering.has(channel) || this.expiredUnanswered.has(channel)) return;
    this.lingering.set(channel, performance.now() + this.linger);
    this.armSweep();
  }

  /**
   * After a reconnect: node-redis replays the subscriptions it knew, but forgets one whose SUBSCRIBE
   * was in flight when the link dropped. Everything held is sent again, batched, without waiting for
   * earlier answers (node-redis sends nothing for channels it already has).
   */
  reassert(): void {
    if (this.closed) return;
    for (const [channel, subscription] of this.held) {
      if (subscription.state !== 'live' && subscription.state !== 'sent') continue;
      subscription.renew();
      this.enqueue(channel, subscription);
    }
    this.flush(true);
  }

  /** Unsubscribes everything now, lingering or not (the layer's `flush()`); resolves when Redis answered. */
  async clear(): Promise<void> {
    const batches = new Map<string | number, string[]>();
    for (const [channel, subscription] of this.held) {
      subscription.settle();
      if (subscription.state === 'live' || subscription.state === 'sent') this.addTo(batches, channel);
    }
    this.reset();
    await Promise.all([...batches].map(([, channels]) => this.sendUnsubscribe(channels)));
  }

  /** Stops the timers; the transport's close drops what Redis holds. */
  close(): void {
    this.closed = true;
    for (const subscription of this.held.values()) subscription.settle();
    this.reset();
  }

  // --- subscribing --------------------------------------------------------------------------

  private enqueue(channel: string, subscription: Subscription): void {
    subscription.state = 'queued';
    const key = this.link.keyOf(channel);
    const queued = this.queue.get(key);
    if (queued) queued.push(channel);
    else this.queue.set(key, [channel]);
    if (!this.flushing && !this.closed) this.flushing = setImmediate(() => this.flush(false));
  }

  /** Sends each key's queue, unless (`force` aside) a SUBSCRIBE of that key is unanswered on a live link. */
  private flush(force: boolean): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = null;
    if (this.closed) return;
    for (const [key, channels] of this.queue) {
      if (!force && (this.inFlight.get(key) ?? 0) > 0 && this.link.ready(channels[0])) continue;
      this.queue.delete(key);
      for (let start = 0; start < channels.length; start += MAX_BATCH) this.sendSubscribe(key, channels.slice(start, start + MAX_BATCH));
    }
  }

  private sendSubscribe(key: string | number, candidates: string[]): void {
    const channels: string[] = [];
    const batch: Subscription[] = [];
    for (const channel of candidates) {
      const subscription = this.held.get(channel);
      // Queued twice (a reassert of a queued one) or cleared since: send each one once.
      if (!subscription || subscription.state !== 'queued') continue;
      subscription.state = 'sent';
      channels.push(channel);
      batch.push(subscription);
    }
    if (channels.length === 0) return;
    const generations = batch.map((subscription) => subscription.generation);
    const up = this.link.ready(channels[0]);
    this.subscribeCommands++;
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    const answered = (error?: unknown): void => {
      const left = this.inFlight.get(key)! - 1;
      if (left > 0) this.inFlight.set(key, left);
      else this.inFlight.delete(key);
      // A refusal is Redis's answer (an ACL's NOPERM, say); a lost connection is not, reassert covers that.
      if (error instanceof ErrorReply && !this.closed) this.options.refused?.(channels, error);
      for (let i = 0; i < batch.length; i++) {
        const subscription = batch[i];
        // Renewed by a reassert since: the newer SUBSCRIBE settles it.
        if (subscription.generation !== generations[i]) continue;
        if (this.held.get(channels[i]) === subscription && subscription.state === 'sent') subscription.state = 'live';
        subscription.settle();
        if (this.expiredUnanswered.delete(channels[i])) this.release(channels[i]);
      }
      if (this.queue.has(key) && !this.flushing && !this.closed) this.flushing = setImmediate(() => this.flush(false));
    };
    this.link.subscribe(channels).then(() => answered(), answered);
    // A link that is down: the command waits in node-redis's queue; the caller must not.
    if (!up) for (const subscription of batch) subscription.settle();
  }

  // --- unsubscribing ------------------------------------------------------------------------

  private armSweep(): void {
    if (this.closed) return;
    const first = this.lingering.values().next();
    if (first.done) return;
    const at = first.value;
    if (this.sweepTimer && at >= this.sweepAt) return;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepAt = at;
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(0, at - performance.now()));
    this.sweepTimer.unref();
  }

  /** Unsubscribes every channel whose linger ends within the next quarter of it, one command per batch key. */
  private sweep(): void {
    this.sweepTimer = null;
    this.sweepAt = Infinity;
    if (this.closed) return;
    const cutoff = performance.now() + this.linger / 4;
    const batches = new Map<string | number, string[]>();
    for (const [channel, deadline] of this.lingering) {
      if (deadline > cutoff) break;
      this.lingering.delete(channel);
      const subscription = this.held.get(channel)!;
      if (subscription.state !== 'live') {
        // Unanswered yet: an UNSUBSCRIBE now could pass a SUBSCRIBE still queued here; see `answered`.
        this.expiredUnanswered.add(channel);
        continue;
      }
      this.held.delete(channel);
      this.addTo(batches, channel);
    }
    for (const [, channels] of batches) {
      for (let start = 0; start < channels.length; start += MAX_BATCH) void this.sendUnsubscribe(channels.slice(start, start + MAX_BATCH));
    }
    this.armSweep();
  }

  private sendUnsubscribe(channels: string[]): Promise<void> {
    this.unsubscribeCommands++;
    const up = this.link.ready(channels[0]);
    const command = this.link.unsubscribe(channels).catch(() => {});
    // Down: node-redis sends it once back, before any SUBSCRIBE queued after it; no need to wait.
    const done = up ? command : Promise.resolve();
    for (const channel of channels) this.unsubscribing.set(channel, done);
    void done.then(() => {
      for (const channel of channels) if (this.unsubscribing.get(channel) === done) this.unsubscribing.delete(channel);
    });
    return done;
  }

  private addTo(batches: Map<string | number, string[]>, channel: string): void {
    const key = this.link.keyOf(channel);
    const batch = batches.get(key);
    if (batch) batch.push(channel);
    else batches.set(key, [channel]);
  }

  private reset(): void {
    this.held.clear();
    this.lingering.clear();
    this.expiredUnanswered.clear();
    this.queue.clear();
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = null;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    this.sweepAt = Infinity;
  }
}
