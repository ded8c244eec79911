// How presence commands reach Redis: one host picked per group (pub/sub layer), or the group's slot (Cluster).
import { RESP_TYPES } from 'redis';
import type { RedisClient, RedisClusterClient } from './link';
import { noop } from './link';
import type { PresenceLink, PresenceScript } from './presence';
import type { RawListener } from './pubsub-base';

/** Replies as Buffers: members are encoded by the layer's codec (binary). */
const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/** A host's two connections, as the pub/sub layer keeps them. */
export interface PresenceHost {
  publisher: RedisClient;
  subscriber: RedisClient;
}

/** For RedisPubSubChannelLayer: every key and the presence channel of a group on the host `pick` gives its hash key. */
export class HostPresenceLink implements PresenceLink {
  readonly publishCommand = 'PUBLISH';
  private readonly buffers = new Map<RedisClient, ReturnType<RedisClient['withTypeMapping']>>();

  constructor(private readonly pick: (key: string) => PresenceHost) {}

  ready(key: string): boolean {
    const host = this.pick(key);
    return host.publisher.isReady && host.subscriber.isReady;
  }

  async run(script: PresenceScript, keys: string[], args: Array<string | Buffer>): Promise<unknown> {
    const client = this.buffered(this.pick(keys[0]).publisher);
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await client.sendCommand(['EVALSHA', script.sha, ...tail]);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return client.sendCommand(['EVAL', script.source, ...tail]);
    }
  }

  command(key: string, args: string[]): Promise<unknown> {
    return this.buffered(this.pick(key).publisher).sendCommand(args);
  }

  subscribe(key: string, channel: string, listener: RawListener): Promise<void> {
    const { subscriber } = this.pick(key);
    return settleIfDown(subscriber.isReady, subscriber.subscribe(channel, listener, true));
  }

  unsubscribe(key: string, channel: string, listener: RawListener): Promise<void> {
    const { subscriber } = this.pick(key);
    return settleIfDown(subscriber.isReady, subscriber.unsubscribe(channel, listener, true));
  }

  private buffered(client: RedisClient): ReturnType<RedisClient['withTypeMapping']> {
    let view = this.buffers.get(client);
    if (!view) this.buffers.set(client, (view = client.withTypeMapping(BUFFERS)));
    return view;
  }
}

/** For RedisShardedPubSubChannelLayer: commands routed by the group's slot, changes on SPUBLISH/SSUBSCRIBE. */
export class ClusterPresenceLink implements PresenceLink {
  readonly publishCommand = 'SPUBLISH';
  private readonly buffers: ReturnType<RedisClusterClient['withTypeMapping']>;

  constructor(
    private readonly cluster: RedisClusterClient,
    private readonly up: () => boolean,
  ) {
    this.buffers = cluster.withTypeMapping(BUFFERS);
  }

  ready(): boolean {
    return this.up();
  }

  async run(script: PresenceScript, keys: string[], args: Array<string | Buffer>): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.buffers.sendCommand(keys[0], false, ['EVALSHA', script.sha, ...tail]);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return this.buffers.sendCommand(keys[0], false, ['EVAL', script.source, ...tail]);
    }
  }

  command(key: string, args: string[]): Promise<unknown> {
    return this.buffers.sendCommand(key, true, args);
  }

  subscribe(_key: string, channel: string, listener: RawListener): Promise<void> {
    return settleIfDown(this.up(), this.cluster.sSubscribe(channel, listener, true));
  }

  unsubscribe(_key: string, channel: string, listener: RawListener): Promise<void> {
    return settleIfDown(this.up(), this.cluster.sUnsubscribe(channel, listener, true));
  }
}

/** A (un)subscribe on a link that is down stays queued until it reconnects; the caller must not wait that long. */
function settleIfDown(ready: boolean, command: Promise<void>): Promise<void> {
  command.catch(noop);
  return ready ? command : Promise.resolve();
}
