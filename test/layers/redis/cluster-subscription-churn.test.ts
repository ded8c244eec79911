// Room churn on the Redis Cluster layer: SSUBSCRIBEs batched per slot, lingering SUNSUBSCRIBEs, no message lost to a join racing a send.
import type { LayerMessage } from '../../../src/layers/layer';
import { RedisShardedPubSubChannelLayer, type RedisShardedPubSubLayerOptions } from '../../../src/layers/redis/cluster-pubsub';
import { keySlot } from '../../../src/layers/redis/key-slot';
import { describeRedis } from '../../support/redis';
import { RedisCluster } from '../../support/redis-cluster';
import { until } from '../../support/wait';
import { runChurn } from './churn';

function clusterCalls(cluster: RedisCluster, command: string): number {
  let total = 0;
  for (const server of cluster.servers) {
    const line = server.cli('INFO', 'commandstats').split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
    if (line) total += Number(/calls=(\d+)/.exec(line)![1]);
  }
  return total;
}

/** Subscribers of each shard channel, summed over the nodes (only its slot's owner has any). */
function shardNumsub(cluster: RedisCluster, channels: string[]): number[] {
  const totals = channels.map(() => 0);
  for (const server of cluster.servers) {
    const lines = server.cli('PUBSUB', 'SHARDNUMSUB', ...channels).trim().split('\n');
    channels.forEach((_, i) => (totals[i] += Number(lines[2 * i + 1])));
  }
  return totals;
}

function tally(layer: RedisShardedPubSubChannelLayer, channel: string, counts: Map<number, number>): Promise<void> {
  return layer.listen(channel, {
    offer(message: LayerMessage) {
      const n = message.n as number;
      counts.set(n, (counts.get(n) ?? 0) + 1);
      return true;
    },
  });
}

/** `perSlot` group names in each of `slots` hash slots (group channels carry no hash tag, so they are found by trying). */
function groupsSharingSlots(slots: number, perSlot: number): string[][] {
  const bySlot = new Map<number, string[]>();
  const full: string[][] = [];
  for (let i = 0; ; i++) {
    const group = `slotmate${i}`;
    const slot = keySlot(`asgi__group__${group}`);
    const names = bySlot.get(slot) ?? [];
    names.push(group);
    bySlot.set(slot, names);
    if (names.length === perSlot && full.push(names) === slots) return full;
  }
}

describeRedis('Redis Cluster layer under room churn (subscriptions batched per slot and lingering)', () => {
  let cluster: RedisCluster;
  const layers: RedisShardedPubSubChannelLayer[] = [];
  const make = (options: Partial<RedisShardedPubSubLayerOptions> = {}) => {
    const layer = new RedisShardedPubSubChannelLayer({ urls: cluster.urls, ...options });
    layers.push(layer);
    return layer;
  };
  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  }, 30_000);
  afterEach(async () => {
    await Promise.all(layers.splice(0).map((layer) => layer.close()));
  });
  afterAll(() => cluster?.close());

  test('keySlot agrees with CLUSTER KEYSLOT (hash tags, an empty tag, non-ASCII)', () => {
    const keys = ['asgi__group__room', 'asgi__presence__{asgi__group__room}:index', 'a{}b', '{}', 'x{y}z{w}', '{{a}}', 'héllo ✓', '', 'slotmate42'];
    for (const key of keys) expect(`${key}: ${keySlot(key)}`).toBe(`${key}: ${cluster.servers[0].cli('CLUSTER', 'KEYSLOT', key).trim()}`);
  });

  test('30 joins of groups in 3 slots in one tick: one SSUBSCRIBE per slot; 100 groups of distinct slots: one each; all receive', async () => {
    const [a, b] = [make({ subscriptionLinger: 200 }), make()];
    await b.groupSend('warm', { type: 'warm' });
    const slotmates = groupsSharingSlots(3, 10).flat();
    const channels = await Promise.all(slotmates.map(() => a.newChannel()));
    let before = clusterCalls(cluster, 'ssubscribe');
    await Promise.all(channels.map((channel, i) => a.groupAdd(slotmates[i], channel)));
    expect(clusterCalls(cluster, 'ssubscribe') - before).toBe(3);

    const spread = Array.from({ length: 100 }, (_, i) => `spread${i}`);
    const spreadChannels = await Promise.all(spread.map(() => a.newChannel()));
    before = clusterCalls(cluster, 'ssubscribe');
    await Promise.all(spreadChannels.map((channel, i) => a.groupAdd(spread[i], channel)));
    const distinctSlots = new Set(spread.map((group) => keySlot(`asgi__group__${group}`))).size;
    expect(clusterCalls(cluster, 'ssubscribe') - before).toBe(distinctSlots);

    const groups = [...slotmates, ...spread];
    const all = [...channels, ...spreadChannels];
    const counts = new Map<number, number>();
    await Promise.all(all.map((channel) => tally(a, channel, counts)));
    for (let i = 0; i < groups.length; i++) await b.groupSend(groups[i], { type: 'tick', n: i });
    await until(() => counts.size === groups.length, 5000, 'every group to receive');
    expect([...counts.values()].every((count) => count === 1)).toBe(true);

    // Left together: after the linger, one SUNSUBSCRIBE per slot.
    before = clusterCalls(cluster, 'sunsubscribe');
    await Promise.all(channels.map((channel, i) => a.groupDiscard(slotmates[i], channel)));
    await until(() => shardNumsub(cluster, slotmates.map((group) => `asgi__group__${group}`)).every((n) => n === 0), 3000, 'the SUNSUBSCRIBEs');
    expect(clusterCalls(cluster, 'sunsubscribe') - before).toBe(3);
  });

  test('join racing send, 100 rounds of new groups, 20 at a time: every message arrives once', async () => {
    const [a, b] = [make(), make()];
    const counts = new Map<number, number>();
    const round = async (n: number) => {
      const channel = await a.newChannel();
      await tally(a, channel, counts);
      await a.groupAdd(`race${n}`, channel);
      await b.groupSend(`race${n}`, { type: 'race', n });
    };
    for (let start = 0; start < 100; start += 20) await Promise.all(Array.from({ length: 20 }, (_, i) => round(start + i)));
    await until(() => counts.size === 100, 5000, 'every message');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect([...counts.values()].every((count) => count === 1)).toBe(true);
  });

  test('leave then rejoin within the linger: no SSUBSCRIBE, no SUNSUBSCRIBE; after the linger SHARDNUMSUB is 0', async () => {
    const linger = 400;
    const [a, b] = [make({ subscriptionLinger: linger }), make()];
    await b.groupSend('warm', { type: 'warm' });
    const channel = await a.newChannel();
    await a.groupAdd('room', channel);
    const calls = () => clusterCalls(cluster, 'ssubscribe') + clusterCalls(cluster, 'sunsubscribe');
    const before = calls();
    await a.groupDiscard('room', channel);
    await new Promise((resolve) => setTimeout(resolve, linger / 2));
    await a.groupAdd('room', channel);
    await b.groupSend('room', { type: 'back' });
    expect(await a.receive(channel)).toEqual({ type: 'back' });
    expect(calls()).toBe(before);

    const unsubscribes = clusterCalls(cluster, 'sunsubscribe');
    await a.groupDiscard('room', channel);
    await until(() => a.subscriptionCounts().groups === 0, 3000, 'the linger to end');
    await until(() => shardNumsub(cluster, ['asgi__group__room'])[0] === 0, 3000, 'the SUNSUBSCRIBE');
    expect(clusterCalls(cluster, 'sunsubscribe') - unsubscribes).toBe(1);
  });

  test('churn: members present for a whole send get it exactly once; fewer SSUBSCRIBE+SUNSUBSCRIBE than joins', async () => {
    const [a, b] = [make(), make()];
    await b.groupSend('warm', { type: 'warm' });
    const calls = () => clusterCalls(cluster, 'ssubscribe') + clusterCalls(cluster, 'sunsubscribe');
    const before = calls();
    const result = await runChurn({ member: a, sender: b, prefix: 'churn', groups: 100, channels: 20, durationMs: 3000 });
    const commands = calls() - before;
    console.log(`cluster churn (100 groups, 20 channels, 3 s): ${JSON.stringify(result)}; SSUBSCRIBE+SUNSUBSCRIBE ${commands} (${(commands / result.joins).toFixed(3)} per join)`);
    expect(result.joins).toBeGreaterThan(100);
    expect(result.checked).toBe(result.joins);
    expect(result.missing).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.strays).toBe(0);
    expect(commands).toBeLessThan(result.joins);
    await until(() => a.subscriptionCounts().groups === 0, 3000, 'the lingering subscriptions to go');
    const names = Array.from({ length: 100 }, (_, i) => `asgi__group__churn${i}`);
    await until(() => shardNumsub(cluster, names).every((n) => n === 0), 3000, 'Redis to agree');
  }, 30_000);

  test('a master restarts during churn: its subscriptions are restored and delivery resumes', async () => {
    const [a, b] = [make(), make()];
    await b.groupSend('warm', { type: 'warm' });
    // Stable members on groups spread over every master, next to the churn.
    const stableGroups = Array.from({ length: 30 }, (_, i) => `steady${i}`);
    const stable = await a.newChannel();
    const counts = new Map<number, number>();
    await tally(a, stable, counts);
    await Promise.all(stableGroups.map((group) => a.groupAdd(group, stable)));
    const stableNames = stableGroups.map((group) => `asgi__group__${group}`);
    let disturbance = 0;
    const churn = runChurn({
      member: a, sender: b, prefix: 'noderestart', groups: 100, channels: 20, durationMs: 8000, disturbance: () => disturbance, probeTimeoutMs: 1000,
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    disturbance++;
    const victim = cluster.servers[1];
    await victim.stop();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await victim.start();
    await until(() => a.health().state === 'up' && b.health().state === 'up', 20_000, 'up again');
    await until(() => shardNumsub(cluster, stableNames).every((n) => n === 1), 10_000, 'the stable groups re-subscribed');
    disturbance++;
    const result = await churn;
    console.log(`cluster churn across a master restart: ${JSON.stringify(result)}`);
    expect(result.missing).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.strays).toBe(0);
    expect(result.checked).toBeGreaterThan(20);
    for (let i = 0; i < stableGroups.length; i++) await b.groupSend(stableGroups[i], { type: 'after', n: i });
    await until(() => counts.size === stableGroups.length, 5000, 'every stable group after the restart');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect([...counts.values()].every((count) => count === 1)).toBe(true);
  }, 90_000);
});
