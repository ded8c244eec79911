// Picks the channel layer from the environment: REDIS_CLUSTER_URL, REDIS_URL, or in-memory.
import type { Logger } from '../logger';
import type { ChannelLayer } from './layer';
import { InMemoryChannelLayer } from './memory';

/**
 * REDIS_CLUSTER_URL (comma-separated seed nodes): sharded pub/sub on Redis Cluster. REDIS_URL
 * (comma-separated hosts, sharded like channels_redis): the pub/sub layer, or the list layer when
 * CHANNEL_LAYER=list (or `preferred` is 'list', as for workers, which need buffered channels).
 * Neither: in-memory, one process. Redis modules load only when asked for.
 */
export async function channelLayerFromEnv(
  env: NodeJS.ProcessEnv,
  logger: Logger,
  preferred: 'pubsub' | 'list' = 'pubsub',
): Promise<ChannelLayer> {
  const split = (value: string) => value.split(',').map((url) => url.trim()).filter(Boolean);
  const layerLogger = logger.child({ component: 'layer' });
  if (env.REDIS_CLUSTER_URL) {
    const { RedisShardedPubSubChannelLayer } = await import('./redis-sharded-pubsub');
    logger.info({ seeds: split(env.REDIS_CLUSTER_URL).length }, 'channel layer: Redis Cluster sharded pub/sub');
    return new RedisShardedPubSubChannelLayer({ urls: split(env.REDIS_CLUSTER_URL), logger: layerLogger });
  }
  if (env.REDIS_URL) {
    const urls = split(env.REDIS_URL);
    if ((env.CHANNEL_LAYER ?? preferred) === 'list') {
      const { RedisChannelLayer } = await import('./redis');
      logger.info({ hosts: urls.length }, 'channel layer: Redis lists (channels_redis core format)');
      return new RedisChannelLayer({ urls, logger: layerLogger });
    }
    const { RedisPubSubChannelLayer } = await import('./redis-pubsub');
    logger.info({ hosts: urls.length }, 'channel layer: Redis pub/sub (channels_redis pubsub format)');
    return new RedisPubSubChannelLayer({ urls, logger: layerLogger });
  }
  logger.info('channel layer: in-memory (set REDIS_URL to span processes)');
  return new InMemoryChannelLayer();
}
