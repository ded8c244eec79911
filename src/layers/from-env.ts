// Picks the channel layer from the environment, by one rule for every process (serve, worker, publish).
import { readFileSync } from 'node:fs';
import type { Logger } from '../logger';
import type { ChannelLayer } from './layer';
import { InMemoryChannelLayer } from './memory';
import { redactUrl } from './redis/link';
import { parseSentinelAddress, type SentinelOptions } from './redis/sentinel';

/** The Redis layers a process can be told to use with CHANNEL_LAYER or `--layer`. */
export type LayerKind = 'pubsub' | 'list';

/**
 * Which layer the environment asks for, with its validated URLs (empty with `sentinel`), the
 * Sentinel-managed master, and the CA file's contents for rediss:// (REDIS_TLS_CA).
 */
export type LayerChoice =
  | { kind: 'memory' }
  | { kind: 'pubsub' | 'list'; urls: string[]; sentinel?: SentinelOptions; tlsCa?: Buffer }
  | { kind: 'cluster'; urls: string[]; tlsCa?: Buffer };

const LAYER_KINDS: readonly string[] = ['pubsub', 'list'];

/** `CHANNEL_LAYER` or `--layer` (named by `source`): 'pubsub', 'list', or undefined when unset or empty. */
export function parseLayerKind(value: string | undefined, source = 'CHANNEL_LAYER'): LayerKind | undefined {
  if (value === undefined || value === '') return undefined;
  if (!LAYER_KINDS.includes(value)) throw new Error(`${source}: "${value}" is not a channel layer; expected pubsub or list`);
  return value as LayerKind;
}

/**
 * A comma-separated list of Redis URLs from variable `name`, each checked: node-redis would otherwise
 * fail later with "Protocol - localhost: - is not a valid Redis protocol", naming neither the variable
 * nor the form it wants. What is shown of a bad value never holds its password.
 */
export function redisUrls(value: string, name: string): string[] {
  const urls = value.split(',').map((url) => url.trim()).filter(Boolean);
  for (const url of urls) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      // Reported below.
    }
    if (!parsed || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '') {
      const shown = parsed ? redactUrl(url) : url.replace(/^.*@/, '***@');
      throw new Error(
        `${name}: "${shown}" is not a Redis URL; expected redis://host:port (rediss:// for TLS, redis://:password@host:port with a password; comma-separated for several hosts), e.g. redis://localhost:6379`,
      );
    }
  }
  return urls;
}

/**
 * The one rule, the same for `serve`, `worker` and `publish`: REDIS_CLUSTER_URL (comma-separated seed
 * nodes) means Redis Cluster sharded pub/sub; REDIS_URL (comma-separated hosts, names spread over them as
 * channels_redis does) means the pub/sub layer, or the list layer (channels_redis core) with
 * CHANNEL_LAYER=list (`--layer list`); neither means in-memory, one process. Every process of one
 * deployment must use the same layer: a worker's group sends reach servers only on their layer.
 */
export function layerChoiceFromEnv(env: NodeJS.ProcessEnv): LayerChoice {
  const kind = parseLayerKind(env.CHANNEL_LAYER);
  const tlsCa = tlsCaFromEnv(env.REDIS_TLS_CA);
  const sentinel = sentinelFromEnv(env);
  if (sentinel && (env.REDIS_URL || env.REDIS_CLUSTER_URL)) {
    throw new Error(`REDIS_SENTINELS: set together with ${env.REDIS_URL ? 'REDIS_URL' : 'REDIS_CLUSTER_URL'}; a deployment uses one Redis: unset one of them`);
  }
  if (env.REDIS_CLUSTER_URL) {
    if (kind === 'list') throw new Error('CHANNEL_LAYER: "list" is not available on Redis Cluster (REDIS_CLUSTER_URL runs sharded pub/sub); unset one of them');
    return { kind: 'cluster', urls: redisUrls(env.REDIS_CLUSTER_URL, 'REDIS_CLUSTER_URL'), tlsCa };
  }
  if (sentinel) {
    // The links reach the master through a local socket (sentinel.ts); TLS through it is not built yet.
    if (tlsCa) throw new Error('REDIS_TLS_CA: set with REDIS_SENTINELS; TLS to a Sentinel-managed master is not supported yet: unset one of them');
    return { kind: kind ?? 'pubsub', urls: [], sentinel };
  }
  if (env.REDIS_URL) return { kind: kind ?? 'pubsub', urls: redisUrls(env.REDIS_URL, 'REDIS_URL'), tlsCa };
  return { kind: 'memory' };
}

/**
 * `CHANNEL_LAYER_KEYS=new,old`: channels_redis's `symmetric_encryption_keys` for every Redis layer and
 * the publisher (the first key encrypts, all decrypt); undefined when unset or empty. Keys are split on
 * commas and trimmed, so a key cannot hold a comma or start or end with a space.
 */
export function layerKeysFromEnv(env: NodeJS.ProcessEnv): string[] | undefined {
  const value = env.CHANNEL_LAYER_KEYS;
  if (value === undefined || value.trim() === '') return undefined;
  const keys = value.split(',').map((key) => key.trim());
  if (keys.some((key) => key === '')) {
    throw new Error(`CHANNEL_LAYER_KEYS: an empty key in a list of ${keys.length}; expected comma-separated keys, the encrypting one first (e.g. new-secret,old-secret)`);
  }
  return keys;
}

/** REDIS_TLS_CA: a PEM file of the CA(s) that rediss:// servers are checked against. Read once, at startup. */
export function tlsCaFromEnv(path: string | undefined): Buffer | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`REDIS_TLS_CA: cannot read "${path}" (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); expected the path of a PEM file with the CA certificate(s)`);
  }
}

/**
 * REDIS_SENTINELS (host:port,...) and REDIS_SENTINEL_MASTER (the monitored name), with optional
 * REDIS_USERNAME/REDIS_PASSWORD for the master and REDIS_SENTINEL_PASSWORD for the Sentinels.
 */
export function sentinelFromEnv(env: NodeJS.ProcessEnv): SentinelOptions | undefined {
  if (!env.REDIS_SENTINELS) {
    if (env.REDIS_SENTINEL_MASTER) throw new Error('REDIS_SENTINEL_MASTER: set without REDIS_SENTINELS; expected REDIS_SENTINELS=host:port,host:port,... as well');
    return undefined;
  }
  const sentinels = env.REDIS_SENTINELS.split(',').map((address) => address.trim()).filter(Boolean);
  for (const address of sentinels) parseSentinelAddress(address, 'REDIS_SENTINELS');
  const masterName = env.REDIS_SENTINEL_MASTER?.trim();
  if (!masterName) throw new Error('REDIS_SENTINEL_MASTER: not set; expected the master name the Sentinels monitor (`sentinel monitor <name> ...`), e.g. mymaster');
  return {
    sentinels,
    masterName,
    username: env.REDIS_USERNAME || undefined,
    password: env.REDIS_PASSWORD || undefined,
    sentinelPassword: env.REDIS_SENTINEL_PASSWORD || undefined,
  };
}

/** The layer `layerChoiceFromEnv` names. Redis modules load only when asked for. */
export async function channelLayerFromEnv(env: NodeJS.ProcessEnv, logger: Logger): Promise<ChannelLayer> {
  const choice = layerChoiceFromEnv(env);
  const layerLogger = logger.child({ component: 'layer' });
  const symmetricEncryptionKeys = layerKeysFromEnv(env);
  // The count, never the keys.
  if (symmetricEncryptionKeys && choice.kind !== 'memory') logger.info({ keys: symmetricEncryptionKeys.length }, 'channel layer: messages encrypted (CHANNEL_LAYER_KEYS)');
  if (choice.kind === 'cluster') {
    const { RedisShardedPubSubChannelLayer } = await import('./redis/cluster-pubsub');
    logger.info({ seeds: choice.urls.length }, 'channel layer: Redis Cluster sharded pub/sub');
    return new RedisShardedPubSubChannelLayer({ urls: choice.urls, tlsCa: choice.tlsCa, logger: layerLogger, symmetricEncryptionKeys });
  }
  if (choice.kind === 'list') {
    const { RedisChannelLayer } = await import('./redis/list');
    logger.info({ hosts: choice.urls.length, sentinelMaster: choice.sentinel?.masterName }, 'channel layer: Redis lists (channels_redis core format)');
    return new RedisChannelLayer({ urls: choice.urls, sentinel: choice.sentinel, tlsCa: choice.tlsCa, logger: layerLogger, symmetricEncryptionKeys });
  }
  if (choice.kind === 'pubsub') {
    const { RedisPubSubChannelLayer } = await import('./redis/pubsub');
    logger.info({ hosts: choice.urls.length, sentinelMaster: choice.sentinel?.masterName }, 'channel layer: Redis pub/sub (channels_redis pubsub format)');
    return new RedisPubSubChannelLayer({ urls: choice.urls, sentinel: choice.sentinel, tlsCa: choice.tlsCa, logger: layerLogger, symmetricEncryptionKeys });
  }
  logger.info('channel layer: in-memory (set REDIS_URL to span processes)');
  return new InMemoryChannelLayer();
}

/**
 * Waits up to `ms` for a Redis layer's first connection and says clearly, once, when there is none,
 * naming the variable to check (the layer only logs that it cannot reach Redis). The process keeps running (the
 * layer retries forever and `/readyz` answers 503 meanwhile): Redis and the app often start together,
 * and exiting would turn a slow Redis into a restart loop. Resolves true once up.
 */
export async function reportUnreachableAtStartup(layer: ChannelLayer, choice: LayerChoice, logger: Logger, ms = 3000): Promise<boolean> {
  if (choice.kind === 'memory') return true;
  const deadline = Date.now() + ms;
  // No "up" event on the ChannelLayer interface: poll its health, at a pace that costs nothing.
  while (layer.health().state !== 'up') {
    if (layer.health().state === 'closed') return false;
    if (Date.now() >= deadline) {
      const sentinel = choice.kind !== 'cluster' ? choice.sentinel : undefined;
      const variable = choice.kind === 'cluster' ? 'REDIS_CLUSTER_URL' : sentinel ? 'REDIS_SENTINELS, REDIS_SENTINEL_MASTER' : 'REDIS_URL';
      const shown = sentinel ? `master ${sentinel.masterName} via Sentinels ${sentinel.sentinels.join(', ')}` : choice.urls.map(redactUrl).join(', ');
      logger.error(
        { urls: choice.urls.map(redactUrl), detail: layer.health().detail },
        `Redis unreachable at startup: ${shown} (${variable}) did not answer within ${ms} ms; ` +
          'cross-process delivery fails and /readyz answers 503 until it does; the layer keeps retrying. Check that Redis runs and the URL is right',
      );
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 50).unref());
  }
  return true;
}
