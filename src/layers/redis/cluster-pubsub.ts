// The channel layer for Redis Cluster: sharded pub/sub (SSUBSCRIBE/SPUBLISH), one shard channel per process for its channels.
import { type LayerMessage, nonLocalName } from '../layer';
import { createRedisCluster, noop, reconnectDelay, redactUrl, type RedisClusterClient } from './link';
import { PubSubLayerBase, type PubSubLayerOptions, type RawListener, toBuffer } from './pubsub-base';
import { AS_BUFFERS, type HistoryCommand } from './history';
import type { PresenceLink } from './presence';
import { ClusterPresenceLink } from './presence-links';
import { keySlot } from './key-slot';

export interface RedisShardedPubSubLayerOptions extends PubSubLayerOptions {
  /** Seed nodes of the cluster (any reachable one is enough to discover the others). Required. */
  urls: string[];
  /** CA certificates (PEM) for `rediss://` seed nodes with a private CA. Default: Node's bundled CAs. */
  tlsCa?: string | Buffer;
}

/** The key under which an envelope on a process channel carries its target (channels_redis core's name). */
const CHANNEL_KEY = '__asgi_channel__';

/**
 * Like RedisPubSubChannelLayer, for Redis Cluster, where a PUBLISH is broadcast to every node and
 * patterns do not exist in sharded pub/sub. Group G is the shard channel `<prefix>__group__G` (one
 * SSUBSCRIBE per group per process, one SPUBLISH per groupSend, on the node owning its slot). A
 * channel from `newChannel()` is reached through its process's shard channel
 * `<prefix>__process__<processId>` (one SSUBSCRIBE per process): the message body plus
 * `__asgi_channel__` naming the channel, as channels_redis's core layer does. Named channels
 * (workers) are shard channels of their own name. channels_redis has no Cluster pub/sub layer, so
 * this format is ours; the message bodies are still msgpack.
 */
export class RedisShardedPubSubChannelLayer extends PubSubLayerBase {
  private readonly cluster: RedisClusterClient;
  private readonly processChannel: string;
  private readonly connected: Promise<void>;
  private retryTimer: NodeJS.Timeout | null = null;
  private wakeRetry: (() => void) | null = null;

  private readonly onEnvelope: RawListener = (bytes) => {
    const envelope = this.decode(bytes, this.processChannel);
    if (!envelope) return;
    const { [CHANNEL_KEY]: channel, ...message } = envelope;
    if (typeof channel === 'string' && this.owns(channel)) this.deliverFromAfar(channel, message as LayerMessage);
  };

  constructor(options: RedisShardedPubSubLayerOptions) {
    const { urls, tlsCa, ...rest } = options;
    if (!urls || urls.length === 0) throw new TypeError('RedisShardedPubSubChannelLayer needs `urls`: the cluster seed nodes');
    super('redis-sharded-pubsub', rest);
    this.processChannel = `${this.prefix}__process__${this.processId}`;
    // No offline queue: fail fast while a shard is down (LayerUnavailable) rather than queue without bound.
    this.cluster = createRedisCluster(urls, { ca: tlsCa });
    this.watch(urls);
    this.connected = this.connect(0);
    this.connected.catch(noop);
  }

  protected startup(): Promise<void> {
    return this.connected;
  }

  // History: keys hash-tagged with the group's shard channel, so a script records and SPUBLISHes on one node.
  protected readonly publishCommand = 'SPUBLISH';
  protected historyCommand: HistoryCommand = (route, args, buffers) =>
    this.cluster.sendCommand(route, false, args, buffers ? AS_BUFFERS : undefined);

  /**
   * The node's sharded subscriber connection is node-redis's own; an SSUBSCRIBE of a channel in the
   * group's slot (hash tag) travels on it, and its reply comes after every earlier message.
   */
  protected async subscriberBarrier(redisChannel: string): Promise<void> {
    const barrier = `${this.prefix}__barrier__${this.processId}__{${redisChannel}}`;
    await this.cluster.sSubscribe(barrier, noop, true);
    await this.cluster.sUnsubscribe(barrier, noop, true);
  }

  protected canPublish(): boolean {
    return this.cluster.isReady && this.monitor.isUp;
  }

  protected transportReady(): boolean {
    return this.cluster.isReady;
  }

  protected async publishGroup(redisChannel: string, body: Uint8Array): Promise<void> {
    await this.cluster.sPublish(redisChannel, toBuffer(body));
  }

  protected async publishChannel(channel: string, message: LayerMessage): Promise<void> {
    const bang = channel.indexOf('!');
    if (bang === -1) {
      await this.cluster.sPublish(channel, toBuffer(this.codec.encode(message)));
      return;
    }
    // `<prefix>.<processId>!<local>`: the process id is the last dotted part before '!'.
    const owner = nonLocalName(channel).slice(0, -1).split('.').pop();
    const envelope = { ...message, [CHANNEL_KEY]: channel };
    await this.cluster.sPublish(`${this.prefix}__process__${owner}`, toBuffer(this.codec.encode(envelope)));
  }

  protected subscribe(redisChannel: string, listener: RawListener): Promise<void> {
    const command = this.cluster.sSubscribe(redisChannel, listener, true);
    command.catch(noop);
    // A shard that is down would hold the caller until it is back; the re-assert on 'node-ready' covers it.
    return this.canPublish() ? command : Promise.resolve();
  }

  protected unsubscribe(redisChannel: string, listener: RawListener): Promise<void> {
    const command = this.cluster.sUnsubscribe(redisChannel, listener, true);
    command.catch(noop);
    return this.canPublish() ? command : Promise.resolve();
  }

  /**
   * SSUBSCRIBE refuses channels of different slots in one command (CROSSSLOT), and node-redis
   * routes it by its first channel, so a batch is one slot. Group channels carry no hash tag (their
   * names are the wire format), so distinct groups rarely share a slot: here batching mostly pays
   * for groups of one slot and at reconnects, and the linger does the rest.
   */
  protected subscriptionBatchKey(redisChannel: string): number {
    return keySlot(redisChannel);
  }

  protected subscriberReady(): boolean {
    return this.canPublish();
  }

  protected subscribeGroups(redisChannels: string[]): Promise<void> {
    return this.cluster.sSubscribe(redisChannels, this.onGroupMessage, true);
  }

  protected unsubscribeGroups(redisChannels: string[]): Promise<void> {
    return this.cluster.sUnsubscribe(redisChannels, this.onGroupMessage, true);
  }

  /** Presence: routed by the group's hash tag, changes on SPUBLISH/SSUBSCRIBE. */
  protected presenceLink(): PresenceLink {
    return new ClusterPresenceLink(this.cluster, () => this.canPublish());
  }

  protected async closeTransport(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    // A close during discovery must wait for it to settle: otherwise the cluster opens after close()
    // and its sockets keep the process alive.
    await this.connected.catch(noop);
    if (!this.cluster.isOpen) return;
    if (this.monitor.isUp) await this.cluster.close().catch(() => this.cluster.destroy());
    else this.cluster.destroy();
  }

  /** Discovers the cluster, retrying with backoff: node-redis gives up after one failed discovery. */
  private async connect(attempt: number): Promise<void> {
    try {
      await this.cluster.connect();
    } catch (error) {
      if (this.closed) throw error;
      this.monitor.failed('cluster', (error as Error).message);
      await new Promise<void>((resolve) => {
        this.wakeRetry = resolve;
        this.retryTimer = setTimeout(resolve, reconnectDelay(attempt));
      });
      this.wakeRetry = null;
      if (this.closed) throw error;
      return this.connect(attempt + 1);
    }
    this.monitor.up('cluster');
    await this.cluster.sSubscribe(this.processChannel, this.onEnvelope, true);
  }

  /** Health per node from node-redis's node events; 'error' must have a listener or it crashes the process. */
  private watch(urls: string[]): void {
    this.monitor.add('cluster');
    const seeds = urls.map(redactUrl).join(',');
    this.cluster.on('error', (error: Error) => this.monitor.failed('cluster', `${seeds}: ${error.message}`));
    // Node connections that failed since their last 'ready'. node-redis opens a node's sharded
    // subscriber on its first SSUBSCRIBE (and drops it when it holds none), and that 'ready' is no
    // comeback: re-asserting then would re-send every SSUBSCRIBE still unanswered and drop the
    // history caches. node-redis hands each connection's events one frozen object of its own, so
    // the key is that object: a node's command and subscriber connections come back one by one.
    const failed = new WeakSet<object>();
    const fail = (node: { host: string; port: number }) => failed.add(node);
    this.cluster.on('node-error', (error: Error, node: { host: string; port: number }) => {
      fail(node);
      this.monitor.failed(`${node.host}:${node.port}`, error.message);
    });
    this.cluster.on('node-reconnecting', fail);
    this.cluster.on('node-ready', (node: { host: string; port: number }) => {
      this.monitor.up(`${node.host}:${node.port}`);
      // node-redis replays a node's shard subscriptions itself; re-assert any lost in flight. The
      // process channel on every 'ready', as always (node-redis sends nothing when it holds it).
      const cameBack = failed.delete(node);
      if (!this.cluster.isReady) return;
      this.cluster.sSubscribe(this.processChannel, this.onEnvelope, true).catch(noop);
      if (cameBack) this.reassertSubscriptions();
    });
  }
}
