// Picks the channel layer from the environment, by one rule for every process (serve, worker, publish).
import type { Logger } from '../logger';
import type { ChannelLayer } from './layer';
import { InMemoryChannelLayer } from './memory';
import { redactUrl } from './redis/link';

/** The Redis layers a process can be told to use with CHANNEL_LAYER or `--layer`. */
export type LayerKind = 'pubsub' | 'list';

/** Which layer the environment asks for, with its validated URLs. */
export type LayerChoice =
  | { kind: 'memory' }
  | { kind: 'pubsub' | 'list'; urls: string[] }
  | { kind: 'cluster'; urls: string[] };

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
  if (env.REDIS_CLUSTER_URL) {
    if (kind === 'list') throw new Error('CHANNEL_LAYER: "list" is not available on Redis Cluster (REDIS_CLUSTER_URL runs sharded pub/sub); unset one of them');
    return { kind: 'cluster', urls: redisUrls(env.REDIS_CLUSTER_URL, 'REDIS_CLUSTER_URL') };
  }
  if (env.REDIS_URL) return { kind: kind ?? 'pubsub', urls: redisUrls(env.REDIS_URL, 'REDIS_URL') };
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
    return new RedisShardedPubSubChannelLayer({ urls: choice.urls, logger: layerLogger, symmetricEncryptionKeys });
  }
  if (choice.kind === 'list') {
    const { RedisChannelLayer } = await import('./redis/list');
    logger.info({ hosts: choice.urls.length }, 'channel layer: Redis lists (channels_redis core format)');
    return new RedisChannelLayer({ urls: choice.urls, logger: layerLogger, symmetricEncryptionKeys });
  }
  if (choice.kind === 'pubsub') {
    const { RedisPubSubChannelLayer } = await import('./redis/pubsub');
    logger.info({ hosts: choice.urls.length }, 'channel layer: Redis pub/sub (channels_redis pubsub format)');
    return new RedisPubSubChannelLayer({ urls: choice.urls, logger: layerLogger, symmetricEncryptionKeys });
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
      const variable = choice.kind === 'cluster' ? 'REDIS_CLUSTER_URL' : 'REDIS_URL';
      logger.error(
        { urls: choice.urls.map(redactUrl), detail: layer.health().detail },
        `Redis unreachable at startup: ${choice.urls.map(redactUrl).join(', ')} (${variable}) did not answer within ${ms} ms; ` +
          'cross-process delivery fails and /readyz answers 503 until it does; the layer keeps retrying. Check that Redis runs and the URL is right',
      );
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 50).unref());
  }
  return true;
}
