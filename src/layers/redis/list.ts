// The Redis list layer: channels_redis 4's RedisChannelLayer (sorted-set queues), byte-compatible.
import { randomUUID } from 'node:crypto';
import {
  type CapacityRule, type ChannelLayer, type LayerHealth, type LayerLogger, type LayerMessage, type LayerOptions,
  type MessageListener, ChannelFull, ChannelLayerError, LayerClosed, LayerUnavailable,
  LAYER_DEFAULTS, capacityRule, isProcessLocal, nonLocalName, validateChannelName,
  checkChannel, checkGroupSend, checkMembership, checkOpen, checkSend,
} from '../layer';
import { LocalChannels } from '../local';
import { Sealer } from '../fernet';
import { FullChannelSkips, LinkMonitor, type RedisTarget } from './link';
import { SentinelMaster, type SentinelOptions } from './sentinel';
import { HistoryUnsupported, type JoinResult } from '../history';

const LIST_NO_HISTORY = 'the list layer keeps no history; use the pub/sub layer (RedisPubSubChannelLayer) for groups with history';
import { OwnMemberships } from './memberships';
import { ListHost } from './list-host';
import { ListReceiver } from './list-receiver';
import {
  EnvelopeReader,
  EnvelopeWriter,
  FLUSH_SCRIPT,
  GROUP_MEMBERS_SCRIPT,
  GROUP_SEND_SCRIPT,
  SEND_SCRIPT,
  channelKey,
  groupKey,
} from './wire';
import { consistentHash } from './consistent-hash';
import type { LayerStats } from '../stats';
import { type PresenceMember, PresenceUnsupported } from '../presence';

export interface RedisChannelLayerOptions extends LayerOptions {
  /** One Redis URL. Default 'redis://127.0.0.1:6379' (channels_redis's default host). Ignored when `urls` is set. */
  url?: string;
  /**
   * Several Redis hosts, each name on the host channels_redis's consistent hash picks. List them in the same order
   * as Django's `CONFIG["hosts"]` so both sides pick the same host for a group or channel.
   */
  urls?: string[];
  /** Key prefix, as channels_redis's `prefix`. Default 'asgi'. */
  prefix?: string;
  /** Seconds one BZPOPMIN blocks before the loop re-issues it (channels_redis's brpop_timeout). Default 5. */
  blockTimeout?: number;
  /** Milliseconds operations wait for the first connection before `LayerUnavailable`. Default 5000. */
  connectTimeout?: number;
  /** Where connection loss, reconnects and undecodable messages are reported. Default: silent. */
  logger?: LayerLogger;
  /**
   * channels_redis's `symmetric_encryption_keys`: every queued message is a Fernet token under the
   * first key, any key opens (tokens older than expiry + 10 s are refused, as channels_redis does).
   * Give Django the same list. Default: none (plain msgpack).
   */
  symmetricEncryptionKeys?: string[];
  /** A Sentinel-managed master instead of `url`/`urls`: the layer follows its failovers. Default none. */
  sentinel?: SentinelOptions;
  /** CA certificates (PEM) for `rediss://` URLs with a private CA. Default: Node's bundled CAs. */
  tlsCa?: string | Buffer;
}

/**
 * Messages queue in Redis sorted sets scored by time, exactly where channels_redis puts them, so a
 * Django process and this one share channels and groups both ways. Each process's own channels
 * (`specific.<client>!<id>`) share one key per host, drained by one receive loop per process that
 * demultiplexes into `LocalChannels`: thousands of consumers cost one blocking connection per host.
 */
export class RedisChannelLayer implements ChannelLayer {
  private readonly hosts: ListHost[];
  private readonly sentinel: SentinelMaster | null;
  private readonly local: LocalChannels;
  private readonly prefix: string;
  /** Capacity per channel name (`capacity`, `channelCapacity`), as channels_redis's get_capacity. */
  private readonly capacityOf: CapacityRule;
  private readonly expiry: number;
  private readonly groupExpiry: number;
  private readonly logger: LayerLogger | undefined;
  /** channels_redis's `client_prefix`: names this process's channels, and their shared key. */
  private readonly clientPrefix = randomUUID().replace(/-/g, '');
  private readonly writer: EnvelopeWriter;
  /** Set with `symmetricEncryptionKeys`: anything else this layer keeps in Redis is sealed with it too. */
  private readonly sealer: Sealer | undefined;
  /** Reads back this process's own bodies (never sealed: they do not leave the process). */
  private readonly reader = new EnvelopeReader();
  private readonly skips: FullChannelSkips;
  /** The loops that drain this process's keys, and `receive` of shared channels. */
  private readonly receiver: ListReceiver;
  /** This process's own memberships, re-added when a host comes back (see OwnMemberships). */
  private readonly memberships: OwnMemberships;
  /** Hosts whose memberships are being re-added: not 'up' until Redis has them again. */
  private readonly restoring = new Set<ListHost>();
  private lastScore = 0;
  private closed = false;

  constructor(options: RedisChannelLayerOptions = {}) {
    this.sentinel = options.sentinel ? new SentinelMaster(options.sentinel, options.logger) : null;
    const urls: RedisTarget[] = this.sentinel ? [this.sentinel.target] : options.urls ?? [options.url ?? 'redis://127.0.0.1:6379'];
    if (urls.length === 0) throw new Error('RedisChannelLayer: `urls` is empty; give at least one Redis URL');
    const settings = { ...LAYER_DEFAULTS, ...options };
    this.prefix = options.prefix ?? 'asgi';
    this.capacityOf = capacityRule(settings);
    this.expiry = settings.expiry;
    this.groupExpiry = settings.groupExpiry;
    this.memberships = new OwnMemberships(settings.groupExpiry);
    const connectTimeout = options.connectTimeout ?? 5000;
    this.logger = options.logger;
    const keys = options.symmetricEncryptionKeys;
    const sealer = keys && keys.length > 0 ? new Sealer(keys) : undefined;
    this.sealer = sealer;
    this.writer = new EnvelopeWriter(sealer);
    this.local = new LocalChannels(settings);
    this.skips = new FullChannelSkips('redis', options.logger);
    const monitor = new LinkMonitor('redis', options.logger);
    this.local.stats.links = monitor;
    this.hosts = urls.map((url) => {
      const host: ListHost = new ListHost(url, options.tlsCa, connectTimeout, monitor, () => this.restoreGroups(host));
      return host;
    });
    this.receiver = new ListReceiver(
      this.hosts,
      { prefix: this.prefix, expiry: this.expiry, blockTimeout: options.blockTimeout ?? 5, connectTimeout, logger: this.logger, sealer },
      this.local,
      this.skips,
    );
  }

  async send(channel: string, message: LayerMessage): Promise<void> {
    checkSend(this.closed, channel, message);
    this.local.stats.sends++;
    const body = this.writer.body(message);
    if (this.owns(channel)) {
      // Our own channel: no Redis round trip, and the sender learns ChannelFull from the channel's
      // own queue (the process key in Redis is shared by all our channels and drained at once).
      if (!this.local.deliver(channel, this.reader.body(body))) throw new ChannelFull(channel);
      return;
    }
    const nonLocal = nonLocalName(channel);
    // channels_redis reads a process's channels from the host of their non-local name.
    const host = this.hostFor(nonLocal);
    const member = isProcessLocal(channel) ? this.writer.member(body, channel) : this.writer.plain(body);
    const now = this.score();
    const started = performance.now();
    const added = await this.command(host, () =>
      host.run(SEND_SCRIPT, [channelKey(this.prefix, nonLocal)], [member, String(now), String(now - this.expiry), String(this.capacityOf(channel)), this.expireSeconds(this.expiry)]),
    );
    this.local.stats.sendLatency.observe(performance.now() - started);
    if (added === 0) throw new ChannelFull(channel);
  }

  async receive(channel: string): Promise<LayerMessage> {
    checkChannel(this.closed, channel);
    if (!isProcessLocal(channel)) return this.receiver.receiveShared(channel);
    this.assertOwned(channel);
    this.receiver.start(nonLocalName(channel));
    return this.local.receive(channel);
  }

  async newChannel(prefix = 'specific'): Promise<string> {
    checkOpen(this.closed);
    const name = `${prefix}.${this.clientPrefix}!${randomUUID().replace(/-/g, '')}`;
    validateChannelName(name);
    // Drain the process key from now on, so messages move to per-channel local queues (capacity
    // per channel) instead of filling the key all of this process's channels share.
    await this.receiver.start(nonLocalName(name));
    return name;
  }

  async groupAdd(group: string, channel: string): Promise<void> {
    checkMembership(this.closed, group, channel);
    const host = this.hostFor(group);
    const key = groupKey(this.prefix, group);
    const score = this.score();
    const own = this.owns(channel);
    if (own) {
      this.memberships.add(group, channel, score);
      // Down: recorded, and added when the host's link returns (as the pub/sub layer subscribes).
      if (!host.up) return;
    }
    try {
      await this.command(host, () =>
        host.commands
          .multi()
          .zAdd(key, { score, value: channel })
          .expire(key, Number(this.expireSeconds(this.groupExpiry)))
          .exec(),
      );
    } catch (error) {
      if (own && error instanceof LayerUnavailable) return;
      if (own) this.memberships.remove(group, channel);
      throw error;
    }
  }

  async groupDiscard(group: string, channel: string): Promise<void> {
    checkMembership(this.closed, group, channel);
    const host = this.hostFor(group);
    const own = this.owns(channel);
    if (own) {
      this.memberships.remove(group, channel);
      if (!host.up) return this.memberships.discardLater(group, channel);
    }
    try {
      await this.command(host, () => host.commands.zRem(groupKey(this.prefix, group), channel));
    } catch (error) {
      if (!own || !(error instanceof LayerUnavailable)) throw error;
      this.memberships.discardLater(group, channel);
    }
  }

  async groupSend(group: string, message: LayerMessage): Promise<void> {
    checkGroupSend(this.closed, group, message);
    this.local.stats.groupSends++;
    const started = performance.now();
    const body = this.writer.body(message);
    const groupHost = this.hostFor(group);
    const now = this.score();
    let members: string[];
    try {
      members = (await this.command(groupHost, () =>
        groupHost.run(GROUP_MEMBERS_SCRIPT, [groupKey(this.prefix, group)], [String(now - this.groupExpiry)]),
      )) as string[];
    } catch (error) {
      if (!(error instanceof LayerUnavailable)) throw error;
      // Nothing went out: this process's own members still get it, and the caller learns that
      // members elsewhere did not (as the pub/sub layers do).
      this.deliverToOwnMembers(group, body);
      throw new LayerUnavailable(`redis ${groupHost.url} is down (${groupHost.problem}); delivered to this process's members only`);
    }
    if (members.length === 0) return this.local.stats.groupSendLatency.observe(performance.now() - started);
    // As channels_redis: one member per Redis key, naming every channel of the group stored there.
    const byKey = new Map<string, string[]>();
    for (const channel of members) {
      const key = channelKey(this.prefix, nonLocalName(channel));
      const channels = byKey.get(key);
      if (channels) channels.push(channel);
      else byKey.set(key, [channel]);
    }
    const byHost = new Map<ListHost, string[]>();
    for (const [key, channels] of byKey) {
      const host = this.hostFor(nonLocalName(channels[0]));
      const keys = byHost.get(host);
      if (keys) keys.push(key);
      else byHost.set(host, [key]);
    }
    await Promise.all(
      [...byHost].map(async ([host, keys]) => {
        const args: Array<string | Buffer> = keys.map((key) => this.writer.member(body, byKey.get(key)!));
        // channels_redis takes a key's capacity from the first channel it maps there.
        for (const key of keys) args.push(String(this.capacityOf(byKey.get(key)![0])));
        args.push(String(now), this.expireSeconds(this.expiry), String(now - this.expiry));
        const over = await this.command(host, () => host.run(GROUP_SEND_SCRIPT, keys, args));
        // Skipped as channels_redis does (a group send never fails for one full member), but counted.
        if (typeof over === 'number' && over > 0) this.skips.skipped(`group ${group}`, over);
      }),
    );
    this.local.stats.groupSendLatency.observe(performance.now() - started);
  }

  async listen(channel: string, listener: MessageListener): Promise<void> {
    checkChannel(this.closed, channel);
    if (!isProcessLocal(channel)) {
      throw new ChannelLayerError('NOT_LISTENABLE', `cannot listen to ${channel}: listen takes a channel from newChannel(); use receive() for shared channels`);
    }
    this.assertOwned(channel);
    this.receiver.start(nonLocalName(channel));
    this.local.listen(channel, listener);
  }

  unlisten(channel: string): void {
    this.local.unlisten(channel);
  }

  // History and recovery: not on this layer (its group sends are queue writes, not one ordered stream).

  async setHistory(): Promise<void> {
    throw new HistoryUnsupported(LIST_NO_HISTORY);
  }

  async groupJoin(): Promise<JoinResult> {
    throw new HistoryUnsupported(LIST_NO_HISTORY);
  }

  get historyReads(): number {
    return 0;
  }

  async flush(): Promise<void> {
    checkOpen(this.closed);
    this.memberships.clear();
    await Promise.all(this.hosts.map((host) => this.command(host, () => host.run(FLUSH_SCRIPT, [], [`${this.prefix}*`]))));
    this.local.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.memberships.clear();
    this.local.close();
    this.receiver.close();
    await Promise.all(this.hosts.map((host) => host.close()));
    await this.sentinel?.close();
  }

  get stats(): LayerStats {
    return this.local.stats;
  }

  // --- presence: not kept by this layer (channels_redis's format has no place for it) ---
  readonly supportsPresence = false;
  presenceJoin(_group: string, _channel: string, _member: PresenceMember): Promise<PresenceMember[]> {
    return Promise.reject(new PresenceUnsupported('Redis list'));
  }
  /** Nothing was joined, so nothing to leave: resolves, as leaving a group one is not in does. */
  presenceLeave(_group: string, _channel: string): Promise<void> {
    return Promise.resolve();
  }
  presence(_group: string): Promise<PresenceMember[]> {
    return Promise.reject(new PresenceUnsupported('Redis list'));
  }
  presenceCount(_group: string): Promise<number> {
    return Promise.reject(new PresenceUnsupported('Redis list'));
  }

  health(): LayerHealth {
    if (this.closed) return { state: 'closed', backend: 'redis' };
    const down = this.hosts.filter((host) => !host.up || this.restoring.has(host));
    if (down.length === 0) return { state: 'up', backend: 'redis' };
    const problem = (host: ListHost) => (host.up ? 'restoring group memberships' : host.problem);
    return { state: 'degraded', backend: 'redis', detail: down.map((host) => `${host.url}: ${problem(host)}`).join('; ') };
  }

  /** Messages from other processes that a full channel of this process (or a full key) skipped. */
  get skippedFull(): number {
    return this.skips.count;
  }

  /** Messages popped from Redis and dropped: not channels_redis messages, or no key opened them (logged rate-limited). */
  get refusedMessages(): number {
    return this.receiver.refused.count;
  }

  private hostFor(name: string): ListHost {
    return this.hosts[consistentHash(name, this.hosts.length)];
  }

  /**
   * Seconds since the epoch, as channels_redis's `time.time()` scores, kept strictly increasing:
   * members with equal scores sort by their random bytes, which would reorder a fast sender.
   */
  private score(): number {
    const now = (performance.timeOrigin + performance.now()) / 1000;
    this.lastScore = now > this.lastScore ? now : this.lastScore + 1e-6;
    return this.lastScore;
  }

  /** EXPIRE takes whole seconds; round up so nothing is dropped before its time. */
  private expireSeconds(seconds: number): string {
    return String(Math.max(1, Math.ceil(seconds)));
  }

  private async command<T>(host: ListHost, run: () => Promise<T>): Promise<T> {
    await host.ready();
    try {
      return await run();
    } catch (error) {
      if (this.closed) throw new LayerClosed();
      if (error instanceof Error && /^(ERR|NOSCRIPT|WRONGTYPE|BUSY)/.test(error.message)) throw error;
      throw new LayerUnavailable(`redis ${host.url}: ${(error as Error).message}`);
    }
  }

  /** While Redis is down, a group send reaches this process's live members directly. */
  private deliverToOwnMembers(group: string, body: Uint8Array): void {
    let message: LayerMessage | undefined;
    this.memberships.forEachLive(group, (channel) => this.receiver.deliver(channel, (message ??= this.reader.body(body))));
  }

  /**
   * On every (re)connect of a host's command link: carries out the discards made while it was down
   * and re-adds this process's live memberships of the groups it holds, with their original scores
   * (ZADD NX: memberships Redis kept are left as they are), in one MULTI. Whether Redis restarted
   * empty or only the link dropped, Redis then matches this process again.
   */
  private restoreGroups(host: ListHost): void {
    if (this.closed || this.memberships.size === 0) return;
    const { discards, members } = this.memberships.takeRestore((group) => this.hostFor(group) === host);
    if (discards.length === 0 && members.length === 0) return;
    const transaction = host.commands.multi();
    for (const [group, channels] of discards) transaction.zRem(groupKey(this.prefix, group), channels);
    const expire = Number(this.expireSeconds(this.groupExpiry));
    let restored = 0;
    for (const [group, list] of members) {
      const key = groupKey(this.prefix, group);
      transaction.zAdd(key, list, { condition: 'NX' }).expire(key, expire);
      restored += list.length;
    }
    this.restoring.add(host);
    transaction.exec().then(
      () => {
        this.restoring.delete(host);
        this.logger?.info({ url: host.url, memberships: restored, discarded: discards.length }, 'redis channel layer: group memberships restored');
      },
      (error: unknown) => {
        // The link dropped again: the next 'ready' retries.
        this.restoring.delete(host);
        this.memberships.putBack(discards);
        if (!this.closed) this.logger?.warn({ err: error, url: host.url }, 'redis channel layer: could not restore group memberships yet');
      },
    );
  }

  /** True for names from this layer's `newChannel()`. */
  private owns(channel: string): boolean {
    return isProcessLocal(channel) && nonLocalName(channel).endsWith(`.${this.clientPrefix}!`);
  }

  private assertOwned(channel: string): void {
    if (!this.owns(channel)) {
      throw new ChannelLayerError('NOT_OWNED', `channel ${channel} belongs to another process: only the process that made it with newChannel() can receive it`);
    }
  }
}
