// Send and group-send from a process that runs no server (a backend job, a script, the CLI).
import { type Codec, layerCodec } from './layers/codec';
import {
  type ChannelLayer,
  LayerUnavailable,
  type LayerMessage,
  validateChannelName,
  validateGroupName,
  validateMessage,
} from './layers/layer';
import { layerChoiceFromEnv, layerKeysFromEnv, parseLayerKind, redisUrls, sentinelFromEnv, tlsCaFromEnv } from './layers/from-env';
import { createRedisClient, type RedisClient, type RedisTarget, targetName } from './layers/redis/link';
import { SentinelMaster, type SentinelOptions } from './layers/redis/sentinel';
import { consistentHash } from './layers/redis/consistent-hash';
import type { HistoryPolicy } from './layers/history';
import { AS_BUFFERS, type HistoryCommand, HistoryRecorder, HistoryTable } from './layers/redis/history';

export interface PublisherOptions {
  /** Redis URL; a comma-separated list (or `urls`) shards like channels_redis. Default REDIS_URL. */
  url?: string;
  urls?: string[];
  /** Redis Cluster seed nodes (comma-separated or array): sharded pub/sub. Default REDIS_CLUSTER_URL. */
  clusterUrl?: string | string[];
  /** Which layer the servers run: 'pubsub' (default, RedisPubSubChannelLayer) or 'list' (RedisChannelLayer). */
  layer?: 'pubsub' | 'list';
  /** channels_redis prefix. Default 'asgi'. */
  prefix?: string;
  /** Milliseconds to wait for Redis before failing with LayerUnavailable. Default 3000. */
  connectTimeout?: number;
  /**
   * channels_redis's `symmetric_encryption_keys` (the first encrypts): the servers' keys. Default
   * CHANNEL_LAYER_KEYS (comma-separated); `[]` means none.
   */
  symmetricEncryptionKeys?: string[];
  /** A Sentinel-managed master instead of URLs. Default: REDIS_SENTINELS/REDIS_SENTINEL_MASTER when no URL is given. */
  sentinel?: SentinelOptions;
  /** CA certificates (PEM) for `rediss://` URLs. Default: the file REDIS_TLS_CA names, else Node's CAs. */
  tlsCa?: string | Buffer;
}

/**
 * Both sends resolve with how many processes received the message when the layer can tell (Redis
 * pub/sub: PUBLISH's receiver count; 0 means nobody was subscribed and the message is gone), or
 * undefined when it cannot (the list layer queues it for a later `receive`; Redis Cluster).
 */
export interface Publisher {
  send(channel: string, message: LayerMessage): Promise<number | undefined>;
  groupSend(group: string, message: LayerMessage): Promise<number | undefined>;
  /** As `ChannelLayer.setHistory`: the table lives in Redis, so servers and other publishers record too. */
  setHistory(pattern: string, policy: HistoryPolicy | null): Promise<void>;
  close(): Promise<void>;
}

type Client = RedisClient;

/**
 * For the pub/sub layer the publisher is one PUBLISH connection per host, plus one subscriber for
 * the history table's change announcements; no server code. A group send to a group with history
 * runs the layers' record script (one EVALSHA), so its message gets its offset as from a server. For the list layer and for Redis Cluster it drives those layers'
 * send paths, since their wire rules (queues, sharded envelopes) live there.
 */
export async function createPublisher(options: PublisherOptions = {}): Promise<Publisher> {
  const explicit = options.url !== undefined || options.urls !== undefined || options.clusterUrl !== undefined;
  const sentinel = options.sentinel ?? (explicit ? undefined : sentinelFromEnv(process.env));
  const tlsCa = options.tlsCa ?? tlsCaFromEnv(process.env.REDIS_TLS_CA);
  const cluster = options.clusterUrl ?? (sentinel ? undefined : process.env.REDIS_CLUSTER_URL || undefined);
  const urls = sentinel ? [] : options.urls ?? redisUrls(options.url ?? process.env.REDIS_URL ?? '', options.url === undefined ? 'REDIS_URL' : 'url');
  if (cluster) return layerPublisher(await clusterLayer(cluster, { ...options, tlsCa }));
  if (urls.length === 0 && !sentinel) throw new Error('no Redis to publish to: set REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_URL, or pass { url }');
  const symmetricEncryptionKeys = options.symmetricEncryptionKeys ?? layerKeysFromEnv(process.env);
  if (options.layer === 'list') {
    const { RedisChannelLayer } = await import('./layers/redis/list');
    return layerPublisher(new RedisChannelLayer({ urls, sentinel, tlsCa, prefix: options.prefix, connectTimeout: options.connectTimeout, symmetricEncryptionKeys }));
  }
  const master = sentinel ? new SentinelMaster(sentinel) : null;
  const targets: RedisTarget[] = master ? [master.target] : urls;
  return PubSubPublisher.connect(targets, { prefix: options.prefix ?? 'asgi', timeoutMs: options.connectTimeout ?? 3000, ca: tlsCa, master, codec: layerCodec(symmetricEncryptionKeys) });
}

class PubSubPublisher implements Publisher {
  private readonly run: HistoryCommand = (route, args, buffers) => this.client(route).sendCommand(args, buffers ? AS_BUFFERS : undefined);
  private readonly table: HistoryTable;
  private readonly recorder: HistoryRecorder;
  /** Hears the table's changes (on the host the table lives on). */
  private readonly watcher: Client;

  private constructor(
    private readonly clients: Client[],
    private readonly prefix: string,
    private readonly codec: Codec,
    private readonly master: SentinelMaster | null,
  ) {
    this.table = new HistoryTable(prefix, this.run, () => 'PUBLISH');
    this.recorder = new HistoryRecorder(prefix, this.run, () => 'PUBLISH', codec);
    this.watcher = this.client(this.table.name).duplicate();
    this.watcher.on('error', () => undefined);
  }

  static async connect(
    targets: RedisTarget[],
    { prefix, timeoutMs, ca, master, codec }: { prefix: string; timeoutMs: number; ca?: string | Buffer; master: SentinelMaster | null; codec: Codec },
  ): Promise<PubSubPublisher> {
    const clients = targets.map((target) => createRedisClient(target, { connectTimeout: timeoutMs, ca }));
    for (const client of clients) client.on('error', () => undefined);
    const publisher = new PubSubPublisher(clients, prefix, codec, master);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        (async () => {
          await Promise.all([...clients.map((client) => client.connect()), publisher.watcher.connect()]);
          // Before the first group send: the table says which groups record.
          await publisher.watcher.subscribe(publisher.table.name, () => void publisher.table.load().catch(() => undefined));
          await publisher.table.load();
        })(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new LayerUnavailable(`cannot reach Redis at ${targets.map(targetName).join(', ')}`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      await publisher.close();
      throw error instanceof LayerUnavailable ? error : new LayerUnavailable(`cannot reach Redis (${(error as Error).message})`);
    } finally {
      clearTimeout(timer);
    }
    return publisher;
  }

  async send(channel: string, message: LayerMessage): Promise<number> {
    validateChannelName(channel);
    validateMessage(message);
    return this.publish(channel, this.codec.encode(message));
  }

  async groupSend(group: string, message: LayerMessage): Promise<number> {
    validateGroupName(group);
    validateMessage(message);
    const redisChannel = `${this.prefix}__group__${group}`;
    const policy = this.table.policies.policyFor(group);
    if (policy === null) return this.publish(redisChannel, this.codec.encode(message));
    const head = this.recorder.head(message);
    try {
      return (await this.recorder.send(redisChannel, head, policy)).receivers;
    } catch (error) {
      throw new LayerUnavailable(`recording the group send failed (${(error as Error).message})`);
    }
  }

  async setHistory(pattern: string, policy: HistoryPolicy | null): Promise<void> {
    await this.table.set(pattern, policy);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients, this.watcher].map((client) => (client.isReady ? client.close() : client.isOpen ? client.destroy() : undefined)));
    await this.master?.close();
  }

  private client(route: string): Client {
    return this.clients[consistentHash(route, this.clients.length)];
  }

  private async publish(redisChannel: string, body: Uint8Array): Promise<number> {
    const client = this.clients[consistentHash(redisChannel, this.clients.length)];
    try {
      return await client.publish(redisChannel, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    } catch (error) {
      throw new LayerUnavailable(`PUBLISH failed (${(error as Error).message})`);
    }
  }
}

function layerPublisher(layer: ChannelLayer): Publisher {
  return {
    send: async (channel, message) => void (await layer.send(channel, message)),
    groupSend: async (group, message) => void (await layer.groupSend(group, message)),
    setHistory: (pattern, policy) => layer.setHistory(pattern, policy),
    close: () => layer.close(),
  };
}

async function clusterLayer(seeds: string | string[], options: PublisherOptions): Promise<ChannelLayer> {
  const { RedisShardedPubSubChannelLayer } = await import('./layers/redis/cluster-pubsub');
  const urls = Array.isArray(seeds) ? seeds : seeds.split(',').filter(Boolean);
  return new RedisShardedPubSubChannelLayer({ urls, prefix: options.prefix, tlsCa: options.tlsCa, symmetricEncryptionKeys: options.symmetricEncryptionKeys ?? layerKeysFromEnv(process.env) });
}

/** `channelkit publish (--group G | --channel C) [--layer list] '<json>'`; errors become exit code 1 via the CLI. */
export async function publishFromCli(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  let group: string | undefined;
  let channel: string | undefined;
  let layer = parseLayerKind(env.CHANNEL_LAYER);
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--group') group = args[++i];
    else if (args[i] === '--channel') channel = args[++i];
    else if (args[i] === '--layer') {
      const value = args[++i];
      if (!value) throw new Error('--layer needs a value: pubsub or list');
      layer = parseLayerKind(value, '--layer');
    }
    else rest.push(args[i]);
  }
  if ((group === undefined) === (channel === undefined) || rest.length !== 1) {
    throw new Error(`usage: channelkit publish (--group G | --channel C) '<json event>'`);
  }
  let event: LayerMessage;
  try {
    event = JSON.parse(rest[0]) as LayerMessage;
  } catch (error) {
    throw new Error(`the event is not valid JSON: ${(error as Error).message}`);
  }
  validateMessage(event);
  if (group !== undefined) validateGroupName(group);
  else validateChannelName(channel);
  // The same rule and checks as serve and worker (from-env.ts), so all three reach the same layer.
  const choice = layerChoiceFromEnv({ ...env, CHANNEL_LAYER: layer });
  if (choice.kind === 'memory') throw new Error('no Redis to publish to: set REDIS_URL (or REDIS_SENTINELS, or REDIS_CLUSTER_URL) to the Redis your servers and workers use');
  const publisher = await createPublisher({
    layer: choice.kind === 'list' ? 'list' : 'pubsub',
    urls: choice.kind === 'cluster' ? undefined : choice.urls,
    clusterUrl: choice.kind === 'cluster' ? choice.urls : undefined,
    symmetricEncryptionKeys: layerKeysFromEnv(env) ?? [],
    sentinel: choice.kind === 'cluster' ? undefined : choice.sentinel,
    tlsCa: choice.tlsCa,
  });
  let receivers: number | undefined;
  try {
    receivers = group !== undefined ? await publisher.groupSend(group, event) : await publisher.send(channel!, event);
  } finally {
    await publisher.close();
  }
  const target = group !== undefined ? `group ${group}` : `channel ${channel}`;
  if (choice.kind === 'list') {
    // The list layer holds a channel's messages until a receiver takes them (or they expire after 60 s).
    process.stdout.write(group !== undefined ? `published to group ${group}\n` : `queued to channel ${channel} (list layer: a worker takes it within 60 s)\n`);
    return;
  }
  if (receivers === 0 && channel !== undefined) {
    // Pub/sub keeps nothing: a job nobody was subscribed to is gone, and "published" would hide it.
    throw new Error(
      `nobody received it: no process subscribes to channel ${channel} on the pub/sub layer, so the message is lost. ` +
        `Start \`channelkit worker ${channel}\` first (same REDIS_URL and CHANNEL_LAYER), or run every process with CHANNEL_LAYER=list so jobs queue until a worker takes them`,
    );
  }
  if (receivers === 0) {
    process.stderr.write(`warning: no process is subscribed to group ${group} on the pub/sub layer: nobody received it (a group with no connected member is normal)\n`);
  }
  process.stdout.write(receivers === undefined || group !== undefined ? `published to ${target}\n` : `published to ${target} (${receivers} receiver${receivers === 1 ? '' : 's'})\n`);
}
