// Room churn on the Redis pub/sub layer: batched SUBSCRIBEs, lingering UNSUBSCRIBEs, no message lost to a join racing a send (issue 12, S7).
import type { LayerMessage } from '../../../src/layers/layer';
import { RedisPubSubChannelLayer, type RedisPubSubLayerOptions } from '../../../src/layers/redis/pubsub';
import { RedisServer, describeRedis } from '../../support/redis';
import { until } from '../../support/wait';
import { runChurn } from './churn';

/** INFO commandstats `calls` of one command ('subscribe', 'unsubscribe', ...). */
function commandCalls(server: RedisServer, command: string): number {
  const line = server.cli('INFO', 'commandstats').split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
  return line ? Number(/calls=(\d+)/.exec(line)![1]) : 0;
}

function numsub(server: RedisServer, ...channels: string[]): number[] {
  const lines = server.cli('PUBSUB', 'NUMSUB', ...channels).trim().split('\n');
  return channels.map((_, i) => Number(lines[2 * i + 1]));
}

const subscriptionCalls = (server: RedisServer) => commandCalls(server, 'subscribe') + commandCalls(server, 'unsubscribe');

/** Listens on `channel`, counting each message by its `n`. */
function tally(layer: RedisPubSubChannelLayer, channel: string, counts: Map<number, number>): Promise<void> {
  return layer.listen(channel, {
    offer(message: LayerMessage) {
      const n = message.n as number;
      counts.set(n, (counts.get(n) ?? 0) + 1);
      return true;
    },
  });
}

describeRedis('Redis pub/sub layer under room churn (subscriptions batched and lingering)', () => {
  let server: RedisServer;
  const layers: RedisPubSubChannelLayer[] = [];
  const make = (options: RedisPubSubLayerOptions = {}) => {
    const layer = new RedisPubSubChannelLayer({ url: server.url, ...options });
    layers.push(layer);
    return layer;
  };
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterEach(async () => {
    await Promise.all(layers.splice(0).map((layer) => layer.close()));
  });
  afterAll(() => server?.close());

  test('subscriptionLinger must be a finite number >= 0: a clear error otherwise', () => {
    expect(() => new RedisPubSubChannelLayer({ url: 'redis://127.0.0.1:1', subscriptionLinger: -1 })).toThrow(/subscriptionLinger/);
    expect(() => new RedisPubSubChannelLayer({ url: 'redis://127.0.0.1:1', subscriptionLinger: Number.NaN })).toThrow(RangeError);
  });

  test('200 joins of 200 distinct groups in one tick: a few SUBSCRIBEs, not 200, and every group then receives', async () => {
    const [a, b] = [make(), make()];
    const channels = await Promise.all(Array.from({ length: 200 }, () => a.newChannel()));
    await b.groupSend('warm', { type: 'warm' }); // b's history table watch, outside the count
    const before = commandCalls(server, 'subscribe');
    await Promise.all(channels.map((channel, i) => a.groupAdd(`tick${i}`, channel)));
    const subscribes = commandCalls(server, 'subscribe') - before;
    expect(subscribes).toBeGreaterThanOrEqual(1);
    expect(subscribes).toBeLessThanOrEqual(2);
    expect(a.subscriptionCommands().subscribe).toBe(subscribes);
    expect(a.subscriptionCounts()).toEqual({ groups: 200, lingering: 0, named: 0 });
    expect(numsub(server, ...channels.map((_, i) => `asgi__group__tick${i}`)).every((n) => n === 1)).toBe(true);

    const counts = new Map<number, number>();
    await Promise.all(channels.map((channel) => tally(a, channel, counts)));
    for (let i = 0; i < 200; i++) await b.groupSend(`tick${i}`, { type: 'tick', n: i });
    await until(() => counts.size === 200, 5000, 'every group to receive');
    expect([...counts.values()].every((count) => count === 1)).toBe(true);
  });

  // A join racing a send: the send is issued the moment groupAdd resolves, from another process.
  // Each round is a new group (a real SUBSCRIBE), 20 rounds at a time so that they share batches;
  // then the same with groups just left (lingering, or with linger 0 an UNSUBSCRIBE in flight).
  test.each([
    ['new groups, default linger', {}, false],
    ['groups just left, default linger (the join finds the lingering subscription)', {}, true],
    ['groups just left, linger 0 (the join meets its UNSUBSCRIBE in flight)', { subscriptionLinger: 0 }, true],
  ] as const)('join racing send, 200 rounds, %s: every message arrives once', async (_name, options, rejoin) => {
    const [a, b] = [make(options), make()];
    const counts = new Map<number, number>();
    const rounds = 200;
    const round = async (n: number) => {
      const channel = await a.newChannel();
      await tally(a, channel, counts);
      const group = `race${n}`;
      if (rejoin) {
        const first = await a.newChannel();
        await a.groupAdd(group, first);
        await a.groupDiscard(group, first);
        await new Promise((resolve) => setTimeout(resolve, 2)); // linger 0: the sweep has sent the UNSUBSCRIBE
      }
      await a.groupAdd(group, channel);
      await b.groupSend(group, { type: 'race', n });
    };
    for (let start = 0; start < rounds; start += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => round(start + i)));
    }
    await until(() => counts.size === rounds, 5000, 'every message');
    await new Promise((resolve) => setTimeout(resolve, 100)); // room for a duplicate to show
    expect(counts.size).toBe(rounds);
    expect([...counts.values()].every((count) => count === 1)).toBe(true);
  });

  test('leave then rejoin within the linger: no UNSUBSCRIBE, no SUBSCRIBE; an empty group keeps its subscription at most the linger', async () => {
    const linger = 400;
    const [a, b] = [make({ subscriptionLinger: linger }), make()];
    const channel = await a.newChannel();
    await a.groupAdd('room', channel);
    await b.groupSend('warm', { type: 'warm' }); // b's history table watch, outside the count
    const calls = subscriptionCalls(server);
    await a.groupDiscard('room', channel);
    expect(a.subscriptionCounts()).toEqual({ groups: 1, lingering: 1, named: 0 });
    // Still subscribed, but what arrives for the empty group reaches nobody.
    await b.groupSend('room', { type: 'while.away' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, linger / 2));
    const started = performance.now();
    await a.groupAdd('room', channel);
    // Still live in Redis: the join costs no command and resolves without waiting for one.
    expect(performance.now() - started).toBeLessThan(50);
    expect(a.subscriptionCounts()).toEqual({ groups: 1, lingering: 0, named: 0 });
    await b.groupSend('room', { type: 'back' });
    expect(await a.receive(channel)).toEqual({ type: 'back' }); // and not 'while.away'
    await new Promise((resolve) => setTimeout(resolve, linger)); // past the first linger: still a member, still subscribed
    expect(numsub(server, 'asgi__group__room')).toEqual([1]);
    expect(subscriptionCalls(server)).toBe(calls);

    // Empty for good: the subscription goes between 3/4 of the linger and the linger.
    const unsubscribes = commandCalls(server, 'unsubscribe');
    await a.groupDiscard('room', channel);
    const left = performance.now();
    // Timed in the process (a redis-cli per poll would be the slower clock); Redis is asked after.
    await until(() => a.subscriptionCounts().groups === 0, 3000, 'the UNSUBSCRIBE', 5);
    const held = performance.now() - left;
    await until(() => numsub(server, 'asgi__group__room')[0] === 0, 3000, 'Redis to agree');
    expect(held).toBeGreaterThanOrEqual(linger * 0.75 - 5);
    expect(held).toBeLessThan(linger + 250); // the timer, plus a loaded machine's delay
    expect(a.subscriptionCounts()).toEqual({ groups: 0, lingering: 0, named: 0 });
    expect(commandCalls(server, 'unsubscribe') - unsubscribes).toBe(1);
  });

  test('linger 0: the subscription goes at once, in one UNSUBSCRIBE for all the groups left in one turn', async () => {
    const a = make({ subscriptionLinger: 0 });
    const channels = await Promise.all(Array.from({ length: 20 }, () => a.newChannel()));
    await Promise.all(channels.map((channel, i) => a.groupAdd(`instant${i}`, channel)));
    const before = commandCalls(server, 'unsubscribe');
    for (let i = 0; i < 20; i++) await a.groupDiscard(`instant${i}`, channels[i]);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(a.subscriptionCounts().groups).toBe(0);
    await until(() => numsub(server, ...channels.map((_, i) => `asgi__group__instant${i}`)).every((n) => n === 0), 3000, 'Redis to agree');
    expect(commandCalls(server, 'unsubscribe') - before).toBe(1);
  });

  test('groups that empty together are unsubscribed together: one UNSUBSCRIBE for 50', async () => {
    const a = make({ subscriptionLinger: 200 });
    const channels = await Promise.all(Array.from({ length: 50 }, () => a.newChannel()));
    await Promise.all(channels.map((channel, i) => a.groupAdd(`together${i}`, channel)));
    const before = commandCalls(server, 'unsubscribe');
    await Promise.all(channels.map((channel, i) => a.groupDiscard(`together${i}`, channel)));
    await until(() => a.subscriptionCounts().groups === 0, 3000, 'the sweep');
    await until(() => numsub(server, ...channels.map((_, i) => `asgi__group__together${i}`)).every((n) => n === 0), 3000, 'Redis to agree');
    expect(commandCalls(server, 'unsubscribe') - before).toBe(1);
  });

  test('churn: members present for a whole send get it exactly once; fewer SUBSCRIBE+UNSUBSCRIBE than joins', async () => {
    const [a, b] = [make(), make()];
    await b.groupSend('warm', { type: 'warm' });
    const before = subscriptionCalls(server);
    const result = await runChurn({ member: a, sender: b, prefix: 'churn', groups: 200, channels: 30, durationMs: 3000 });
    const commands = subscriptionCalls(server) - before;
    console.log(`churn (200 groups, 30 channels, 3 s): ${JSON.stringify(result)}; SUBSCRIBE+UNSUBSCRIBE ${commands} (${(commands / result.joins).toFixed(3)} per join)`);
    expect(result.joins).toBeGreaterThan(100);
    expect(result.checked).toBe(result.joins);
    expect(result.missing).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.strays).toBe(0);
    expect(commands).toBeLessThan(result.joins);
    // Everything left: after the linger nothing is held, in the layer or in Redis.
    await until(() => a.subscriptionCounts().groups === 0, 3000, 'the lingering subscriptions to go');
    expect(numsub(server, ...Array.from({ length: 200 }, (_, i) => `asgi__group__churn${i}`)).every((n) => n === 0)).toBe(true);
  }, 30_000);

  test('Redis restarts during churn: every subscription is restored (batched) and delivery resumes', async () => {
    const [a, b] = [make(), make()];
    await b.groupSend('warm', { type: 'warm' });
    // Stable members next to the churn: their 30 groups must all be subscribed again after the restart.
    const stable = await a.newChannel();
    const counts = new Map<number, number>();
    await tally(a, stable, counts);
    await Promise.all(Array.from({ length: 30 }, (_, i) => a.groupAdd(`stable${i}`, stable)));
    const stableNames = Array.from({ length: 30 }, (_, i) => `asgi__group__stable${i}`);
    let disturbance = 0;
    const churn = runChurn({
      member: a, sender: b, prefix: 'restart', groups: 100, channels: 20, durationMs: 5000, disturbance: () => disturbance, probeTimeoutMs: 1000,
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Joins that start from here until Redis is back and re-subscribed are not checked for delivery
    // (a join while Redis is down resolves at once, by design); joins after that are.
    disturbance++;
    await server.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const subscribesBefore = 0; // a restarted Redis starts its command stats again
    await server.start();
    await until(() => a.health().state === 'up' && b.health().state === 'up', 10_000, 'up again');
    await until(() => numsub(server, ...stableNames).every((n) => n === 1), 5000, 'the stable groups re-subscribed');
    disturbance++;
    const result = await churn;
    const subscribes = commandCalls(server, 'subscribe') - subscribesBefore;
    console.log(`churn across a restart: ${JSON.stringify(result)}; SUBSCRIBE commands since the restart ${subscribes}`);
    expect(result.missing).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.strays).toBe(0);
    expect(result.checked).toBeGreaterThan(20);

    // Every stable group delivers, once.
    for (let i = 0; i < 30; i++) await b.groupSend(`stable${i}`, { type: 'after', n: i });
    await until(() => counts.size === 30, 5000, 'every stable group after the restart');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect([...counts.values()].every((count) => count === 1)).toBe(true);
  }, 60_000);
});
