// The Redis pub/sub channel layer over one host or several: channels_redis 4's RedisPubSubChannelLayer on the wire.
import type { LayerMessage } from '../layer';
import { consistentHash } from './consistent-hash';
import { closeClient, type LinkMonitor, noop, openLink, type RedisClient, type RedisTarget, targetName } from './link';
import { PubSubLayerBase, type PubSubLayerOptions, type RawListener, toBuffer } from './pubsub-base';
import { SentinelMaster, type SentinelOptions } from './sentinel';
import { AS_BUFFERS, type HistoryCommand } from './history';
import type { PresenceLink } from './presence';
import { HostPresenceLink } from './presence-links';

export interface RedisPubSubLayerOptions extends PubSubLayerOptions {
  /** The Redis to use. Default 'redis://localhost:6379' (channels_redis's default host). */
  url?: string;
  /**
   * Several Redis hosts, each name on the host channels_redis's CRC32 rule picks; overrides `url`.
   * List them in the same order as the Django settings' `hosts`, or the two sides pick different
   * hosts for a name.
   */
  urls?: string[];
  /** A Sentinel-managed master instead of `url`/`urls`: the layer follows its failovers. Default none. */
  sentinel?: SentinelOptions;
  /** CA certificates (PEM) for `rediss://` URLs with a private CA. Default: Node's bundled CAs. */
  tlsCa?: string | Buffer;
}

/** One Redis host: a connection for commands and one in subscriber mode (RESP2 needs two). */
class Host {
  readonly publisher: RedisClient;
  readonly subscriber: RedisClient;
  /** The process pattern's PSUBSCRIBE; queued until the first connection, replayed after reconnects. */
  readonly patternSubscribed: Promise<void>;

  constructor(target: RedisTarget, ca: string | Buffer | undefined, monitor: LinkMonitor, pattern: string, onMessage: RawListener, onReconnect: () => void) {
    const shown = targetName(target);
    this.publisher = openLink(target, { ca }, monitor, `${shown} (publish)`);
    // The subscriber keeps its offline queue: it only ever holds (UN)SUBSCRIBE commands.
    this.subscriber = openLink(target, { offlineQueue: true, ca }, monitor, `${shown} (subscribe)`);
    this.patternSubscribed = this.subscriber.pSubscribe(pattern, onMessage, true);
    this.patternSubscribed.catch(noop);
    let connections = 0;
    this.subscriber.on('ready', () => {
      if (++connections === 1) return;
      this.subscriber.pSubscribe(pattern, onMessage, true).catch(noop);
      onReconnect();
    });
  }
}

/**
 * Channels' pub/sub layer for Node, speaking channels_redis 4's wire format: msgpack bodies, group G
 * on Redis channel `<prefix>__group__G`, `send(channel)` a PUBLISH on the channel's own name, hosts
 * picked by `consistentHash` of the Redis channel name. So a Django process on the same Redis can
 * group_send to our groups and send to our channels, and we to its.
 *
 * Subscriptions, per process: one SUBSCRIBE per group with local members, one SUBSCRIBE per named
 * channel read here (worker channels), and one PSUBSCRIBE `*.<processId>!*` per host for every
 * channel from `newChannel()` (channels_redis subscribes once per consumer instead). Every host gets the pattern
 * because a sender, ours or Django's, publishes a channel on the host its name hashes to.
 *
 * While Redis is down: `send`/`groupSend` throw LayerUnavailable at once (`groupSend` first
 * delivers to this process's own members), sends to this process's own channels and local queues
 * keep working, `health()` is 'degraded'; node-redis reconnects with backoff (2 s cap) and replays
 * every subscription, and the layer re-asserts its own after each reconnect.
 */
export class RedisPubSubChannelLayer extends PubSubLayerBase {
  private readonly hosts: Host[];
  private readonly sentinel: SentinelMaster | null;
  private readonly subscribedEverywhere: Promise<void>;

  constructor(options: RedisPubSubLayerOptions = {}) {
    const { url, urls, sentinel, tlsCa, ...rest } = options;
    super('redis-pubsub', rest);
    this.sentinel = sentinel ? new SentinelMaster(sentinel, rest.logger) : null;
    const list: RedisTarget[] = this.sentinel ? [this.sentinel.target] : urls && urls.length > 0 ? urls : [url ?? 'redis://localhost:6379'];
    const pattern = `*.${this.processId}!*`;
    this.hosts = list.map(
      (target) => new Host(target, tlsCa, this.monitor, pattern, this.onChannelMessage, () => this.reassertSubscriptions()),
    );
    this.subscribedEverywhere = Promise.all(
      this.hosts.flatMap((host) => [host.patternSubscribed, firstReady(host.publisher), firstReady(host.subscriber)]),
    ).then(noop);
    // Refused, not lost (a lost link replays it): say so, or this process's channels would be silently deaf.
    this.subscribedEverywhere.catch((error: Error) =>
      this.closed ? undefined : this.logger?.error(
        { backend: 'redis-pubsub', pattern, error: error.message },
        "channel layer: Redis refused this process's channel subscription; with a Redis ACL user, allow every channel (&* or allchannels): channel names are not under the prefix",
      ),
    );
  }

  protected startup(): Promise<void> {
    return this.subscribedEverywhere;
  }

  // History: its keys and table live on the host their Redis channel hashes to (see redis/history.ts).
  protected readonly publishCommand = 'PUBLISH';
  protected historyCommand: HistoryCommand = (route, args, buffers) =>
    this.host(route).publisher.sendCommand(args, buffers ? AS_BUFFERS : undefined);

  /** PING on the subscriber (RESP2 allows it in subscribed mode): its PONG comes after every earlier message. */
  protected async subscriberBarrier(redisChannel: string): Promise<void> {
    await this.host(redisChannel).subscriber.ping();
  }

  /**
   * Both links of the host must be up: with the subscriber down, this process's own members would
   * miss the echo of a group send that the publisher got through, so it counts as down too (local
   * members then get the message directly, and the caller a LayerUnavailable).
   */
  protected canPublish(redisChannel: string): boolean {
    const host = this.host(redisChannel);
    return host.publisher.isReady && host.subscriber.isReady;
  }

  protected transportReady(): boolean {
    return this.hosts.every((host) => host.publisher.isReady && host.subscriber.isReady);
  }

  protected async publishGroup(redisChannel: string, body: Uint8Array): Promise<void> {
    await this.host(redisChannel).publisher.publish(redisChannel, toBuffer(body));
  }

  protected async publishChannel(channel: string, message: LayerMessage): Promise<void> {
    await this.host(channel).publisher.publish(channel, toBuffer(this.codec.encode(message)));
  }

  protected subscribe(redisChannel: string, listener: RawListener): Promise<void> {
    const { subscriber } = this.host(redisChannel);
    return settleIfDown(subscriber, subscriber.subscribe(redisChannel, listener, true));
  }

  protected unsubscribe(redisChannel: string, listener: RawListener): Promise<void> {
    const { subscriber } = this.host(redisChannel);
    return settleIfDown(subscriber, subscriber.unsubscribe(redisChannel, listener, true));
  }

  // Group subscriptions are batched per host: one SUBSCRIBE carries channels of any slot.
  protected subscriptionBatchKey(redisChannel: string): number {
    return this.hosts.length === 1 ? 0 : consistentHash(redisChannel, this.hosts.length);
  }

  protected subscriberReady(redisChannel: string): boolean {
    return this.host(redisChannel).subscriber.isReady;
  }

  protected subscribeGroups(redisChannels: string[]): Promise<void> {
    return this.host(redisChannels[0]).subscriber.subscribe(redisChannels, this.onGroupMessage, true);
  }

  protected unsubscribeGroups(redisChannels: string[]): Promise<void> {
    return this.host(redisChannels[0]).subscriber.unsubscribe(redisChannels, this.onGroupMessage, true);
  }

  protected async closeTransport(): Promise<void> {
    await Promise.all(this.hosts.flatMap((host) => [closeClient(host.publisher), closeClient(host.subscriber)]));
    await this.sentinel?.close();
  }

  /** Presence: a group's keys and presence channel all on the host its hash key picks. */
  protected presenceLink(): PresenceLink {
    return new HostPresenceLink((key) => this.host(key));
  }

  private host(redisChannel: string): Host {
    return this.hosts[consistentHash(redisChannel, this.hosts.length)];
  }
}

/**
 * A (un)subscribe on a link that is down stays queued in node-redis until it reconnects; the caller
 * must not wait that long, so it gets a settled promise (the command still runs later).
 */
function settleIfDown(client: RedisClient, command: Promise<void>): Promise<void> {
  command.catch(noop);
  return client.isReady ? command : Promise.resolve();
}

function firstReady(client: RedisClient): Promise<void> {
  return client.isReady ? Promise.resolve() : new Promise((resolve) => client.once('ready', () => resolve()));
}
