// What the Redis pub/sub layers share: the ChannelLayer API over LocalChannels, refcounted subscriptions, link health.
import { randomBytes } from 'node:crypto';
import { type Codec, MsgpackCodec, SealedCodec } from '../codec';
import { Sealer } from '../fernet';
import {
  type ChannelLayer, type LayerHealth, type LayerLogger, type LayerMessage, type LayerOptions, type MessageListener,
  ChannelFull, LayerUnavailable, LAYER_DEFAULTS, isProcessLocal, nonLocalName, validateChannelName, validateGroupName,
  checkChannel, checkGroupSend, checkMembership, checkOpen, checkSend,
} from '../layer';
import { LocalChannels } from '../local';
import type { LayerStats } from '../stats';
import { FullChannelSkips, LinkMonitor, noop } from './link';
import { RefusedMessages } from './refused';
import { type HistoryPolicy, type JoinFrom, type JoinResult, HistoryNotKept, validateJoinFrom } from '../history';
import { type HistoryCommand, type PublishCommand, RedisHistory } from './history';
import { PRESENCE_DEFAULTS, type PresenceMember } from '../presence';
import { type PresenceLink, RedisPresence } from './presence';
import { SubscriptionBatcher } from './subscription-batcher';

/** Options of both Redis pub/sub layers, on top of `capacity`, `expiry`, `groupExpiry` (LayerOptions). */
export interface PubSubLayerOptions extends LayerOptions {
  /** Prefix of group channels (`<prefix>__group__<group>`). Default 'asgi', as channels_redis. */
  prefix?: string;
  /** Receives one line per link state change (down, back up). Default: silent. */
  logger?: LayerLogger;
  /**
   * channels_redis's `symmetric_encryption_keys`: every message is a Fernet token under the first key;
   * any key opens. Default: none (plain msgpack). channels_redis reads these on its pub/sub layer from
   * 4.2 on (4.0 and 4.1 encrypt only on the core layer).
   */
  symmetricEncryptionKeys?: string[];
  /** Milliseconds between presence heartbeats (one command per group with local members). Default 5000. */
  presenceHeartbeat?: number;
  /**
   * Milliseconds after a process's last heartbeat that its members are swept (a process that died
   * without leaving). Default 3 heartbeats: 15000, so members of a dead process go within 20 s.
   */
  presenceTimeout?: number;
  /**
   * Milliseconds a group's Redis subscription is kept after its last local member left, so a room
   * that empties and fills again within it costs no UNSUBSCRIBE and no SUBSCRIBE (and that join
   * resolves at once). An empty group holds its subscription at most this long, plus event-loop
   * delay (longer only while its own SUBSCRIBE is still unanswered); messages to it meanwhile are
   * dropped on arrival. Expired ones go out together, one UNSUBSCRIBE per host (Cluster: per slot).
   * 0 unsubscribes at once, batched with the others released in the same turn. Default 1000.
   */
  subscriptionLinger?: number;
}

/** Default of `subscriptionLinger`: longer than a page reload's leave-then-join, short next to a room's quiet spells. */
export const SUBSCRIPTION_LINGER_DEFAULT = 1000;

/** node-redis hands buffer-mode pub/sub listeners the payload and the Redis channel it came on. */
export type RawListener = (message: Buffer, channel: Buffer) => void;

/**
 * The ChannelLayer API for Redis pub/sub transports. Local queues, listeners and group membership are
 * LocalChannels; this class decides which Redis subscriptions a process holds: one per group with
 * local members (its first and last local member, as LocalChannels reports them, decide; the
 * subscriptions are batched and linger `subscriptionLinger` after the last, see SubscriptionBatcher), one per
 * named channel read here, and one per process for all of its `newChannel()` names (set up by the
 * subclass). Subclasses only move bytes.
 */
export abstract class PubSubLayerBase implements ChannelLayer {
  private channelCount = 0;
  protected readonly local: LocalChannels;
  protected readonly codec: Codec;
  private readonly copier = new MsgpackCodec();
  /**
   * Set with `symmetricEncryptionKeys`: whatever else this layer keeps in Redis (history, presence
   * names) goes through it too (see SealedCodec and Sealer.sealString).
   */
  protected readonly sealer: Sealer | undefined;
  /** Random per layer instance: every `newChannel()` name carries it, so one subscription covers them all. */
  readonly processId = randomBytes(8).toString('hex');
  protected readonly prefix: string;
  protected readonly logger: LayerLogger | undefined;
  protected readonly monitor: LinkMonitor;
  private readonly groupPrefix: string;
  /** `<...>.<processId>!`: the non-local part every channel of this process ends with. */
  private readonly ownMarker: string;
  /**
   * The subscription of each group LocalChannels has members of (or a `groupJoin` holds), set on
   * its first member and deleted with its last: it settles when its SUBSCRIBE was answered (or at
   * once while the link is down).
   */
  private readonly groupSubs = new Map<string, Promise<void>>();
  /** Group subscriptions in Redis: batched SUBSCRIBEs, UNSUBSCRIBEs after a linger (see SubscriptionBatcher). */
  private readonly groupSubscriptions: SubscriptionBatcher;
  /** Named channels (no '!') read here: subscribed on the first receive/listen, until flush/close. */
  private readonly namedSubs = new Map<string, Promise<void>>();
  private startupDone = false;
  private readonly refused: RefusedMessages;
  private readonly skips: FullChannelSkips;
  protected closed = false;

  // Bound once: node-redis keys listeners by identity, and no closure is made per message.
  // The group name is read straight from the channel's bytes after the prefix: one string per message, not two.
  protected readonly onGroupMessage: RawListener = (bytes, channel) => this.receiveGroup(channel.toString('latin1', this.groupPrefix.length), bytes);
  protected readonly onChannelMessage: RawListener = (bytes, channel) => this.receiveChannel(channel.toString('latin1'), bytes);

  constructor(backend: string, options: PubSubLayerOptions) {
    const {
      prefix = 'asgi', logger, symmetricEncryptionKeys, presenceInterval, presenceHeartbeat = 5000, presenceTimeout,
      subscriptionLinger = SUBSCRIPTION_LINGER_DEFAULT, ...limits
    } = options;
    if (!Number.isFinite(subscriptionLinger) || subscriptionLinger < 0) {
      throw new RangeError(`subscriptionLinger must be a finite number of milliseconds >= 0, got ${subscriptionLinger}`);
    }
    this.sealer = symmetricEncryptionKeys && symmetricEncryptionKeys.length > 0 ? new Sealer(symmetricEncryptionKeys) : undefined;
    this.codec = this.sealer ? new SealedCodec(this.sealer) : new MsgpackCodec();
    this.presenceOptions = {
      interval: presenceInterval ?? PRESENCE_DEFAULTS.presenceInterval,
      heartbeat: presenceHeartbeat,
      timeout: presenceTimeout ?? presenceHeartbeat * 3,
    };
    this.local = new LocalChannels({ ...LAYER_DEFAULTS, ...stripUndefined(limits) });
    this.prefix = prefix;
    this.logger = logger;
    this.groupPrefix = `${prefix}__group__`;
    this.ownMarker = `.${this.processId}!`;
    this.monitor = new LinkMonitor(backend, logger);
    this.local.stats.links = this.monitor;
    this.skips = new FullChannelSkips(backend, logger);
    this.refused = new RefusedMessages(backend, logger);
    // The transport exists only after the subclass constructor: the link reaches it when used.
    this.groupSubscriptions = new SubscriptionBatcher({
      keyOf: (channel) => this.subscriptionBatchKey(channel),
      ready: (channel) => this.subscriberReady(channel),
      subscribe: (channels) => this.subscribeGroups(channels),
      unsubscribe: (channels) => this.unsubscribeGroups(channels),
    }, {
      linger: subscriptionLinger,
      refused: (channels, error) => logger?.error(
        { backend, channels: channels.length, first: channels[0], error: error.message },
        'channel layer: Redis refused a group subscription; those groups get no messages from other processes',
      ),
    });
    this.history = new RedisHistory(prefix, {
      command: (route, args, buffers) => this.historyCommand(route, args, buffers),
      publish: () => this.publishCommand,
      barrier: (redisChannel) => this.subscriberBarrier(redisChannel),
      subscribe: (redisChannel, listener) => this.subscribe(redisChannel, listener),
      closed: () => this.closed,
    }, this.codec);
  }

  // --- what a transport provides -------------------------------------------------------------

  /** Settles once every connection was ready and the process subscription is in place everywhere. */
  protected abstract startup(): Promise<void>;
  /** Whether a publish to `redisChannel` (a group's, or a `send`'s channel name) can be attempted now. */
  protected abstract canPublish(redisChannel: string): boolean;
  /** PUBLISH/SPUBLISH the encoded group message on the group's Redis channel. */
  protected abstract publishGroup(redisChannel: string, body: Uint8Array): Promise<void>;
  /** Move `message` to the process(es) reading `channel`. */
  protected abstract publishChannel(channel: string, message: LayerMessage): Promise<void>;
  /** Must not wait for a link that is down: node-redis replays subscriptions after reconnecting. */
  protected abstract subscribe(redisChannel: string, listener: RawListener): Promise<void>;
  protected abstract unsubscribe(redisChannel: string, listener: RawListener): Promise<void>;
  /** Group channels with the same key may share one command: the host, or the Cluster slot. */
  protected abstract subscriptionBatchKey(redisChannel: string): string | number;
  /** Whether the subscriber connection of `redisChannel` takes commands now. */
  protected abstract subscriberReady(redisChannel: string): boolean;
  /** One (S)SUBSCRIBE of group channels of one batch key, with the group listener; settles on Redis's answer. */
  protected abstract subscribeGroups(redisChannels: string[]): Promise<void>;
  protected abstract unsubscribeGroups(redisChannels: string[]): Promise<void>;
  protected abstract closeTransport(): Promise<void>;
  /**
   * Whether every connection can take a command now (node-redis's `isReady`). `health()` says 'up'
   * only when this holds too, so a send issued after 'up' is never refused by `canPublish`: the link
   * events the monitor counts and `isReady` are two sources, and node-redis re-subscribes before it
   * sets `isReady` (Redis shows the subscription while the client still refuses commands).
   */
  protected abstract transportReady(): boolean;
  /** History's commands (scripts, the table) on the Redis holding `route`'s keys (see redis/history.ts). */
  protected abstract historyCommand: HistoryCommand;
  /**
   * Resolves once everything Redis published to this process's subscription of `redisChannel` before
   * the call has arrived: a command on that subscriber connection, whose reply queues behind them.
   */
  protected abstract subscriberBarrier(redisChannel: string): Promise<void>;
  /** How the history script publishes: PUBLISH, or SPUBLISH in Cluster. */
  protected abstract readonly publishCommand: PublishCommand;

  /** How presence commands reach Redis (see redis/presence.ts). */
  protected abstract presenceLink(): PresenceLink;

  // --- ChannelLayer ---------------------------------------------------------------------------

  async send(channel: string, message: LayerMessage): Promise<void> {
    checkSend(this.closed, channel, message);
    this.local.stats.sends++;
    if (this.owns(channel)) {
      // Our own channel: no Redis round trip, and the sender learns ChannelFull as with one process.
      // A copy through plain msgpack: nothing leaves the process, so nothing needs sealing.
      if (!this.local.deliver(channel, this.copier.decode(this.copier.encode(message)))) throw new ChannelFull(channel);
      return;
    }
    if (!this.startupDone) await this.awaitStartup();
    if (!this.canPublish(channel)) throw new LayerUnavailable(this.monitor.detail() || 'Redis is down');
    const started = performance.now();
    try {
      await this.publishChannel(channel, message);
    } catch (error) {
      throw this.unavailable(error);
    }
    this.local.stats.sendLatency.observe(performance.now() - started);
  }

  async receive(channel: string): Promise<LayerMessage> {
    checkChannel(this.closed, channel);
    if (!isProcessLocal(channel)) await this.subscribeNamed(channel);
    return this.local.receive(channel);
  }

  async newChannel(prefix = 'specific'): Promise<string> {
    checkOpen(this.closed);
    // processId is random per layer; a counter keeps each connection's name short and unique.
    const name = `${prefix}.${this.processId}!${(++this.channelCount).toString(36)}`;
    validateChannelName(name);
    // The name only works once the process subscription is live; wait for it, unless Redis is down.
    if (!this.startupDone) await this.awaitStartup();
    return name;
  }

  async groupAdd(group: string, channel: string): Promise<void> {
    checkMembership(this.closed, group, channel);
    // LocalChannels decides: its first member of a group SUBSCRIBEs, its last (see dropGroup) UNSUBSCRIBEs.
    if (this.local.groupAdd(group, channel)) this.groupSubs.set(group, this.subscribeGroup(group));
    await this.groupSubs.get(group);
  }

  async groupDiscard(group: string, channel: string): Promise<void> {
    // Leaving works after close: consumers leave their groups on the way out.
    checkMembership(false, group, channel);
    if (this.local.groupDiscard(group, channel)) await this.dropGroup(group);
  }

  async groupSend(group: string, message: LayerMessage): Promise<void> {
    checkGroupSend(this.closed, group, message);
    this.local.stats.groupSends++;
    if (!this.history.table.loaded) await this.awaitHistoryTable(group);
    const policy = this.history.table.policies.policyFor(group);
    if (policy !== null) return this.sendRecorded(group, message, policy);
    const body = this.codec.encode(message);
    const redisChannel = this.groupPrefix + group;
    if (!this.startupDone) await this.awaitStartup();
    if (!this.canPublish(redisChannel)) {
      // Known not sent: local members still get it (they would have via the echo), and the caller
      // learns that members in other processes did not.
      if (this.local.hasGroup(group)) this.deliverToGroup(group, this.codec.decode(body));
      throw new LayerUnavailable(`${this.monitor.detail() || 'Redis is down'}; delivered to this process's members only`);
    }
    const started = performance.now();
    try {
      // Local members get it from Redis's echo like everyone else: one path, one order.
      await this.publishGroup(redisChannel, body);
    } catch (error) {
      throw this.unavailable(error);
    }
    this.local.stats.groupSendLatency.observe(performance.now() - started);
  }

  async listen(channel: string, listener: MessageListener): Promise<void> {
    checkChannel(this.closed, channel);
    if (!isProcessLocal(channel)) await this.subscribeNamed(channel);
    this.local.listen(channel, listener);
  }

  unlisten(channel: string): void {
    this.local.unlisten(channel);
  }

  async flush(): Promise<void> {
    await this.presenceState?.leaveAll();
    this.local.flush();
    const groups = [...this.groupSubs.keys()];
    const named = [...this.namedSubs.keys()];
    this.groupSubs.clear();
    this.namedSubs.clear();
    this.history.caches.invalidateAll();
    if (this.closed) return;
    await Promise.all([
      groups.length > 0 || this.groupSubscriptions.size > 0 ? this.groupSubscriptions.clear() : undefined,
      ...named.map((channel) => this.unsubscribe(channel, this.onChannelMessage).catch(noop)),
    ]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Own members leave while the links are still open, so other processes see them go at once.
    const presence = this.presenceState;
    this.presenceState = null;
    await presence?.close();
    if (this.closed) return;
    this.closed = true;
    this.local.close();
    this.monitor.release();
    this.groupSubscriptions.close();
    await this.closeTransport();
  }

  health(): LayerHealth {
    if (this.closed) return { state: 'closed', backend: this.monitor.backend };
    const health = this.monitor.health();
    if (health.state === 'up' && !this.transportReady()) {
      return { state: 'degraded', backend: this.monitor.backend, detail: 'reconnecting: a Redis connection is not ready yet' };
    }
    return health;
  }

  /**
   * Redis subscriptions this process holds: `groups` counts every group subscription in Redis,
   * `lingering` those of them whose group has no local member left (kept `subscriptionLinger`),
   * `named` named channels (for tests, metrics and the soak bench).
   */
  subscriptionCounts(): { groups: number; lingering: number; named: number } {
    return { groups: this.groupSubscriptions.size, lingering: this.groupSubscriptions.lingeringCount, named: this.namedSubs.size };
  }

  /**
   * Group (S)SUBSCRIBE and (S)UNSUBSCRIBE commands this layer asked node-redis for, each carrying
   * one batch of groups. node-redis sends nothing for channels it already holds (a re-assert after a
   * reconnect), and replays its own subscriptions after a reconnect uncounted here, so Redis's INFO
   * commandstats is the figure to trust across reconnects.
   */
  subscriptionCommands(): { subscribe: number; unsubscribe: number } {
    return { subscribe: this.groupSubscriptions.subscribeCommands, unsubscribe: this.groupSubscriptions.unsubscribeCommands };
  }

  /**
   * After a reconnect node-redis replays the subscriptions it knows, but one whose SUBSCRIBE was in
   * flight when the link dropped is forgotten; re-assert them all (node-redis sends nothing for
   * those already live).
   */
  protected reassertSubscriptions(): void {
    if (this.closed) return;
    this.history.reconnected();
    this.presenceState?.reassert();
    this.groupSubscriptions.reassert();
    for (const group of this.groupSubs.keys()) this.groupSubs.set(group, this.groupSubscriptions.acquire(this.groupPrefix + group));
    for (const channel of this.namedSubs.keys()) this.subscribe(channel, this.onChannelMessage).catch(noop);
  }

  // --- history and recovery (redis/history.ts, redis/history-cache.ts) -----------------------

  /** The pattern table, recording script and per-group caches. */
  protected readonly history: RedisHistory;
  /** Groups with a `groupJoin` reading their history: their subscription is held meanwhile. */
  private readonly joining = new Map<string, number>();

  /** Groups whose name matches `pattern` keep `policy`'s history (null: no longer), for every sender on this Redis. */
  async setHistory(pattern: string, policy: HistoryPolicy | null): Promise<void> {
    checkOpen(this.closed);
    if (!this.startupDone) await this.awaitStartup();
    try {
      await this.history.table.set(pattern, policy);
    } catch (error) {
      throw error instanceof RangeError ? error : this.unavailable(error);
    }
  }

  /**
   * `groupAdd` plus the replay `from` asks for. The group's subscription is live before its history
   * is read, the read is shared by every join in this process (see HistoryCaches), and the member is
   * added in the tick the result is computed: live delivery continues at `position.offset + 1`.
   */
  async groupJoin(group: string, channel: string, from: JoinFrom): Promise<JoinResult> {
    checkMembership(this.closed, group, channel);
    validateJoinFrom(from);
    await this.awaitHistoryTable(group, true);
    const policy = this.history.table.policies.policyFor(group);
    if (!policy) throw new HistoryNotKept(group);
    const redisChannel = this.groupPrefix + group;
    if (!this.canPublish(redisChannel)) throw new LayerUnavailable(`${this.monitor.detail() || 'Redis is down'}; cannot read the history of ${group}`);
    this.joining.set(group, (this.joining.get(group) ?? 0) + 1);
    try {
      let subscribed = this.groupSubs.get(group);
      if (!subscribed) this.groupSubs.set(group, (subscribed = this.groupSubscriptions.acquire(redisChannel)));
      await subscribed;
      // A cache forgotten between the read and this tick (a gap, a reconnect) is read again.
      for (let attempt = 0; attempt < 5; attempt++) {
        await this.history.caches.load(group, policy).catch((error: unknown) => Promise.reject(this.unavailable(error)));
        const result = this.history.caches.join(group, from, policy);
        if (result) {
          this.local.groupAdd(group, channel);
          this.local.stats.countJoin('since' in from, result.recovered);
          return result;
        }
      }
      throw new LayerUnavailable(`the history of ${group} kept changing while it was read; retry`);
    } finally {
      const left = this.joining.get(group)! - 1;
      if (left > 0) this.joining.set(group, left);
      else {
        this.joining.delete(group);
        if (!this.local.hasGroup(group)) void this.dropGroup(group);
      }
    }
  }

  /** Reads of history streams from Redis by this process (a storm of joins of one group costs one). */
  get historyReads(): number {
    return this.history.caches.reads;
  }

  /** One EVALSHA records and publishes (see RECORD_SCRIPT); never delivered without its offset. */
  private async sendRecorded(group: string, message: LayerMessage, policy: HistoryPolicy): Promise<void> {
    const head = this.history.recorder.head(message);
    const redisChannel = this.groupPrefix + group;
    if (!this.canPublish(redisChannel)) {
      // As for any group: this process's members still get it, but without an offset (nothing assigned
      // one) and outside the history caches; it is not recorded, and the caller is told.
      if (this.local.hasGroup(group)) this.deliverToGroup(group, this.codec.decode(this.codec.encode(message)));
      throw new LayerUnavailable(`${this.monitor.detail() || 'Redis is down'}; delivered to this process's members only, not recorded`);
    }
    try {
      await this.history.recorder.send(redisChannel, head, policy);
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  /**
   * Subscribes to the table's announcements (once), then loads it. A group send waits for the first
   * load; when Redis cannot be read it fails as a send would (`strict`), or, when Redis is down
   * anyway, lets the send take its usual down path.
   */
  private async awaitHistoryTable(group: string, strict = false): Promise<void> {
    if (!this.startupDone) await this.awaitStartup();
    if (this.history.table.loaded) return;
    // Redis down: the send fails at once as it always did (no table needed to know that).
    if (!strict && !this.canPublish(this.groupPrefix + group)) return;
    try {
      await this.history.loadTable();
    } catch (error) {
      if (strict || this.canPublish(this.groupPrefix + group)) throw this.unavailable(error);
    }
  }

  // --- incoming -------------------------------------------------------------------------------

  private receiveGroup(group: string, bytes: Buffer): void {
    // A history cache follows its group even while a join holds the subscription with no member yet.
    const cached = this.history.caches.has(group);
    // Asked once: nothing below runs anything that could change the membership before the delivery.
    const members = this.local.hasGroup(group);
    // Left while the UNSUBSCRIBE was on its way.
    if (!cached && !members) return;
    // Decoded once for every local member (they share the object, as with the in-memory layer).
    const message = this.decode(bytes, group, this.groupPrefix);
    if (!message) return;
    if (cached) this.history.caches.observe(group, message);
    if (members) this.deliverToGroup(group, message);
  }

  /**
   * A message for one channel of this process. A full queue skips it, as a full member of a group
   * send: PUBLISH has no way back to the sender, so it is counted and logged instead.
   */
  protected receiveChannel(channel: string, bytes: Buffer): void {
    const message = this.decode(bytes, channel);
    if (message) this.deliverFromAfar(channel, message);
  }

  /** Group delivery to this process's members: full members are skipped, counted and logged. */
  private deliverToGroup(group: string, message: LayerMessage): void {
    const skipped = this.local.deliverToGroup(group, message);
    if (skipped > 0) this.skips.skipped(`group ${group}`, skipped);
    // Memberships expire lazily inside LocalChannels; when the last one went, so does the subscription.
    if (!this.local.hasGroup(group)) void this.dropGroup(group);
  }

  /** Local delivery of a message another process sent to `channel`: a full channel skips it, counted. */
  protected deliverFromAfar(channel: string, message: LayerMessage): void {
    if (!this.local.deliver(channel, message)) this.skips.skipped(channel);
  }

  /** Messages that a full channel of this process skipped (from another process, or as a group member). */
  get skippedFull(): number {
    return this.skips.count + (this.presenceState?.skipped ?? 0);
  }

  // --- presence (redis/presence.ts): made on first use, so a layer without presence pays nothing ---
  readonly supportsPresence = true;
  private readonly presenceOptions: { interval: number; heartbeat: number; timeout: number };
  private presenceState: RedisPresence | null = null;

  async presenceJoin(group: string, channel: string, member: PresenceMember): Promise<PresenceMember[]> {
    checkMembership(this.closed, group, channel);
    if (!this.startupDone) await this.awaitStartup();
    return this.presenceOf().join(group, channel, member);
  }

  async presenceLeave(group: string, channel: string): Promise<void> {
    checkMembership(false, group, channel);
    await this.presenceState?.leave(group, channel);
  }

  async presence(group: string): Promise<PresenceMember[]> {
    checkOpen(this.closed);
    validateGroupName(group);
    if (!this.startupDone) await this.awaitStartup();
    return this.presenceOf().list(group);
  }

  async presenceCount(group: string): Promise<number> {
    checkOpen(this.closed);
    validateGroupName(group);
    if (!this.startupDone) await this.awaitStartup();
    return this.presenceOf().count(group);
  }

  private presenceOf(): RedisPresence {
    if (this.presenceState) return this.presenceState;
    this.presenceState = new RedisPresence(
      this.presenceLink(), this.codec, this.prefix, this.processId, this.presenceOptions,
      (channel, diff) => this.local.deliver(channel, diff), this.logger,
    );
    this.local.stats.presence = this.presenceState;
    return this.presenceState;
  }

  get stats(): LayerStats {
    return this.local.stats;
  }

  /** The message in `bytes` from Redis channel `prefix + from`, or null (refused, counted and logged). */
  protected decode(bytes: Uint8Array, from: string, prefix = ''): LayerMessage | null {
    try {
      return this.codec.decode(bytes);
    } catch (error) {
      // The channel's name is only built for a refusal, not for every message.
      this.refused.refused(prefix + from, error);
      return null;
    }
  }

  /** Messages from Redis dropped because they could not be decoded or no key opened them (logged rate-limited). */
  get refusedMessages(): number {
    return this.refused.count;
  }

  // --- helpers --------------------------------------------------------------------------------

  /** True for names from this layer's `newChannel()`, whatever their prefix. */
  protected owns(channel: string): boolean {
    return isProcessLocal(channel) && nonLocalName(channel).endsWith(this.ownMarker);
  }

  /** The group's first local member: SUBSCRIBE once the links are up, unless it was left meanwhile. */
  private async subscribeGroup(group: string): Promise<void> {
    if (!this.startupDone) await this.awaitStartup();
    if (!this.local.hasGroup(group) && !this.joining.has(group)) return;
    // Still wanted, so dropGroup has not run since (or ran before this acquire and released nothing).
    await this.groupSubscriptions.acquire(this.groupPrefix + group);
  }

  /** The group's last local member left: its subscription lingers, then goes (SubscriptionBatcher). */
  private dropGroup(group: string): Promise<void> {
    // A join reading the group's history holds its subscription; it drops it if it adds nobody.
    if (this.joining.has(group)) return Promise.resolve();
    this.history.caches.drop(group);
    if (!this.groupSubs.delete(group) || this.closed) return Promise.resolve();
    this.groupSubscriptions.release(this.groupPrefix + group);
    return Promise.resolve();
  }

  private async subscribeNamed(channel: string): Promise<void> {
    if (!this.startupDone) await this.awaitStartup();
    let subscribed = this.namedSubs.get(channel);
    if (!subscribed) {
      subscribed = this.subscribe(channel, this.onChannelMessage).catch(noop);
      this.namedSubs.set(channel, subscribed);
    }
    return subscribed;
  }

  /** Waits for the first connection, but never longer than until a link is known to be down. */
  private async awaitStartup(): Promise<void> {
    const ready = this.startup().then(() => {
      this.startupDone = true;
      this.monitor.release();
    }, noop);
    await Promise.race([ready, this.monitor.nextFailure()]);
  }

  private unavailable(error: unknown): LayerUnavailable {
    if (error instanceof LayerUnavailable) return error;
    return new LayerUnavailable(`${(error as Error)?.message ?? String(error)}`);
  }
}

/** Options spread over defaults must not reset a default with an explicit `undefined`. */
function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** node-redis writes Buffers as they are; a view over the encoder's copy avoids a second copy. */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
