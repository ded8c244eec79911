import { createCluster } from 'redis';
import { encode } from '@msgpack/msgpack';
import { RedisShardedPubSubChannelLayer } from '../../../src/layers/redis/cluster-pubsub';
import { LayerUnavailable } from '../../../src/layers/layer';
import type { PresenceDiff } from '../../../src/layers/presence';
import { describeRedis } from '../../support/redis';
import { RedisCluster } from '../../support/redis-cluster';
import { oneMessageEach, until } from '../../support/wait';
import { describeLayerConformance } from '../conformance';
import { clusterControl } from './history-control';

/** Sum of `cmdstat_<command>` calls over every node of the cluster. */
function clusterCalls(cluster: RedisCluster, command: string): number {
  let total = 0;
  for (const server of cluster.servers) {
    const line = server.cli('INFO', 'commandstats').split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
    if (line) total += Number(/calls=(\d+)/.exec(line)![1]);
  }
  return total;
}

describeRedis('RedisShardedPubSubChannelLayer on a 3-master Redis Cluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  }, 30000);
  afterAll(() => cluster?.close());

  describeLayerConformance('RedisShardedPubSubChannelLayer', {
    create: async (options) => new RedisShardedPubSubChannelLayer({ ...options, urls: cluster.urls }),
    shared: true,
    storesUnreadMessages: false,
    ownChannelsLocal: true,
    redis: clusterControl(() => cluster.servers),
  });

  test('groups cost one SSUBSCRIBE per process, channels one per process, a groupSend one SPUBLISH', async () => {
    const [a, b] = [
      new RedisShardedPubSubChannelLayer({ urls: cluster.urls }),
      new RedisShardedPubSubChannelLayer({ urls: cluster.urls }),
    ];
    try {
      const members = await Promise.all(Array.from({ length: 200 }, () => a.newChannel()));
      await Promise.all(members.map((channel) => a.groupAdd('G', channel)));
      const remote = await b.newChannel();
      await b.groupAdd('G', remote);
      const shardNumsub = cluster.servers
        .map((server) => Number(server.cli('PUBSUB', 'SHARDNUMSUB', 'asgi__group__G').split('\n')[1]))
        .reduce((x, y) => x + y, 0);
      expect(shardNumsub).toBe(2);
      const shardChannels = cluster.servers.flatMap((server) => server.cli('PUBSUB', 'SHARDCHANNELS').split('\n').filter(Boolean));
      expect(shardChannels.sort()).toEqual(
        ['asgi__group__G', `asgi__process__${a.processId}`, `asgi__process__${b.processId}`].sort(),
      );

      const before = clusterCalls(cluster, 'spublish');
      const allHere = oneMessageEach(a, members);
      await b.groupSend('G', { type: 'fan.out' });
      await allHere;
      expect(await b.receive(remote)).toEqual({ type: 'fan.out' });
      expect(clusterCalls(cluster, 'spublish') - before).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('a process channel envelope is msgpack with __asgi_channel__, delivered without that key', async () => {
    const layer = new RedisShardedPubSubChannelLayer({ urls: cluster.urls });
    const raw = createCluster({ rootNodes: cluster.urls.map((url) => ({ url })) });
    raw.on('error', () => {});
    await raw.connect();
    try {
      const channel = await layer.newChannel();
      await raw.sPublish(`asgi__process__${layer.processId}`, Buffer.from(encode({ type: 'env', n: 3, __asgi_channel__: channel })));
      expect(await layer.receive(channel)).toEqual({ type: 'env', n: 3 });
    } finally {
      await raw.close();
      await layer.close();
    }
  });
});

/** Whether `server` is the master holding `key`'s slot. */
function ownsKey(server: RedisCluster['servers'][number], key: string): boolean {
  const ranges = server
    .cli('CLUSTER', 'NODES')
    .split('\n')
    .find((line) => line.includes('myself'))!
    .split(' ')
    .slice(8)
    .map((range) => range.split('-').map(Number));
  const slot = Number(server.cli('CLUSTER', 'KEYSLOT', key).trim());
  return ranges.some(([first, last = first]) => slot >= first && slot <= last);
}

describeRedis('RedisShardedPubSubChannelLayer when a cluster master dies and comes back', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  }, 30000);
  afterAll(() => cluster?.close());

  test('degraded and failing fast while a master is down, no crash; every group delivers again once it is back', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const [a, b] = [
      new RedisShardedPubSubChannelLayer({ urls: cluster.urls }),
      new RedisShardedPubSubChannelLayer({ urls: cluster.urls }),
    ];
    try {
      // Enough groups that every master owns some (CRC16 slots spread them over the three).
      const groups = Array.from({ length: 12 }, (_, i) => `room${i}`);
      const received = new Map<string, number>();
      for (const group of groups) {
        const channel = await b.newChannel();
        await b.groupAdd(group, channel);
        await b.listen(channel, { offer: () => received.set(group, (received.get(group) ?? 0) + 1) !== null });
      }
      // One round to every group, repeated until each member got its round once. Subscriptions take a moment,
      // and just after a master returns a node client may still be offline: its sends fail with
      // LayerUnavailable for a while, which counts as "not yet".
      const deliversToEveryGroup = (what: string) =>
        until(async () => {
          received.clear();
          try {
            for (const group of groups) await a.groupSend(group, { type: 'tick' });
          } catch (error) {
            if (error instanceof LayerUnavailable) return false;
            throw error;
          }
          await new Promise((resolve) => setTimeout(resolve, 100)); // long enough for a duplicate to show too
          return groups.every((group) => received.get(group) === 1);
        }, 10_000, what);
      await deliversToEveryGroup('subscriptions on every master');

      const victim = cluster.servers[1];
      // The victim must own some of the groups, or its death would prove nothing about them.
      const owned = groups.filter((group) => ownsKey(victim, `asgi__group__${group}`));
      expect(owned.length).toBeGreaterThan(0);
      await victim.stop();
      await until(() => a.health().state === 'degraded' && b.health().state === 'degraded', 5000, 'degraded');
      expect(a.health().detail).toContain(String(victim.port));
      const started = Date.now();
      await expect(a.groupSend(groups[0], { type: 'while.down' })).rejects.toBeInstanceOf(LayerUnavailable);
      expect(Date.now() - started).toBeLessThan(200);

      await victim.start();
      await until(() => a.health().state === 'up' && b.health().state === 'up', 15_000, 'up again');
      await deliversToEveryGroup('every group delivering again');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await Promise.all([a.close(), b.close()]);
    }
  }, 60_000);

  test('presence: after the master holding a group restarts empty, a member that left while it was down leaves for the others; the living stay', async () => {
    const victim = cluster.servers[2];
    const group = Array.from({ length: 100 }, (_, i) => `lobby${i}`).find((name) => ownsKey(victim, `asgi__presence__{${name}}`))!;
    const options = { urls: cluster.urls, presenceInterval: 50, presenceHeartbeat: 300, presenceTimeout: 1500 };
    const [a, b] = [new RedisShardedPubSubChannelLayer(options), new RedisShardedPubSubChannelLayer(options)];
    try {
      const [survivor, leaver, watcher] = [await a.newChannel(), await a.newChannel(), await b.newChannel()];
      const leaves = new Set<string>();
      await b.listen(watcher, {
        offer(message) {
          if (message.type === 'presence.diff') for (const member of (message as unknown as PresenceDiff).leaves) leaves.add(member.id);
          return true;
        },
      });
      await a.presenceJoin(group, survivor, { id: 'survivor' });
      await a.presenceJoin(group, leaver, { id: 'leaver' });
      await b.presenceJoin(group, watcher, { id: 'watcher' });

      await victim.stop();
      await a.presenceLeave(group, leaver); // owed to Redis, and nothing to remove once it is back empty
      await victim.start();
      await until(() => leaves.has('leaver'), 15_000, 'the leave missed while the master was down');
      expect(leaves.has('survivor')).toBe(false);
      expect((await b.presence(group)).map((member) => member.id).sort()).toEqual(['survivor', 'watcher']);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60_000);
});
