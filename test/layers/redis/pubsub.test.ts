import { createClient } from 'redis';
import { encode } from '@msgpack/msgpack';
import type { LayerMessage } from '../../../src/layers/layer';
import { RedisPubSubChannelLayer, type RedisPubSubLayerOptions } from '../../../src/layers/redis/pubsub';
import { consistentHash, crc32 } from '../../../src/layers/redis/consistent-hash';
import { RedisServer, describeRedis, layersOnPrivateRedis } from '../../support/redis';
import { describeLayerConformance } from '../conformance';
import { oneMessageEach, poll, until } from '../../support/wait';
import { hostsControl } from './history-control';

const PUBSUB_FLAGS = { shared: true, storesUnreadMessages: false, ownChannelsLocal: true } as const;

/** INFO commandstats `calls` of one command, e.g. 'publish'. */
function commandCalls(server: RedisServer, command: string): number {
  const line = server.cli('INFO', 'commandstats').split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
  return line ? Number(/calls=(\d+)/.exec(line)![1]) : 0;
}

function nextMessage(layer: RedisPubSubChannelLayer, channel: string, ms = 2000): Promise<LayerMessage | 'timeout'> {
  return Promise.race([layer.receive(channel), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);
}

describe('consistentHash (consistent-hash.ts) matches channels_redis.utils._consistent_hash', () => {
  // Computed with /usr/bin/python3 and Debian's python3-channels-redis 4:
  // {v: [_consistent_hash(v, n) for n in (2, 3, 4, 7, 16, 100)]} and binascii.crc32(v.encode()).
  const python: Array<[string, number[], number]> = [
    ['asgi__group__chat_lobby', [0, 0, 0, 0, 1, 7], 3704951089],
    ['asgi__group__room', [1, 2, 3, 5, 12, 79], 1152568505],
    ['specific.abc!def', [1, 2, 3, 5, 13, 82], 1393573166],
    ['thumbnails.generate', [1, 2, 2, 4, 10, 67], 1138903768],
    ['', [0, 0, 0, 0, 0, 0], 0],
    ['héllo ✓', [1, 2, 2, 4, 10, 68], 2199276268],
    ['asgi__group__a', [1, 1, 2, 4, 10, 64], 938482270],
    ['x'.repeat(99), [0, 0, 0, 0, 1, 7], 3754881318],
  ];
  test.each(python)('%j picks the same host as Django for 2, 3, 4, 7, 16 and 100 hosts', (name, hosts, crc) => {
    expect(crc32(Buffer.from(name, 'utf8'))).toBe(crc);
    expect([2, 3, 4, 7, 16, 100].map((ring) => consistentHash(name, ring))).toEqual(hosts);
    expect(consistentHash(name, 1)).toBe(0);
  });
});

describeRedis('RedisPubSubChannelLayer on one host', () => {
  const fixture = layersOnPrivateRedis((url, options: RedisPubSubLayerOptions) => new RedisPubSubChannelLayer({ ...options, url }));
  const make = (options: RedisPubSubLayerOptions = {}) => fixture.make(options);

  describeLayerConformance('RedisPubSubChannelLayer (one host)', {
    create: async (options) => new RedisPubSubChannelLayer({ ...options, url: fixture.server.url }),
    ...PUBSUB_FLAGS,
    redis: hostsControl(() => [fixture.server]),
  });

  test('1000 local members of a group cost one SUBSCRIBE, all channels one PSUBSCRIBE, a groupSend one PUBLISH', async () => {
    const [a, b] = [make(), make()];
    const members: string[] = [];
    for (let i = 0; i < 1000; i++) members.push(await a.newChannel());
    await Promise.all(members.map((channel) => a.groupAdd('G', channel)));
    const remote = await b.newChannel();
    await b.groupAdd('G', remote);
    // One subscription per process (a and b), not per member.
    expect(fixture.server.cli('PUBSUB', 'NUMSUB', 'asgi__group__G')).toBe('asgi__group__G\n2\n');
    expect(fixture.server.cli('PUBSUB', 'NUMPAT').trim()).toBe('2');
    expect(a.subscriptionCounts()).toEqual({ groups: 1, lingering: 0, named: 0 });

    const before = commandCalls(fixture.server, 'publish');
    const allHere = oneMessageEach(a, members);
    await a.groupSend('G', { type: 'fan.out' });
    await allHere;
    expect(await b.receive(remote)).toEqual({ type: 'fan.out' });
    expect(commandCalls(fixture.server, 'publish') - before).toBe(1);

    // The last local member leaving releases the process's subscription, after its linger.
    await Promise.all(members.map((channel) => a.groupDiscard('G', channel)));
    expect(a.subscriptionCounts()).toEqual({ groups: 1, lingering: 1, named: 0 });
    await until(() => fixture.server.cli('PUBSUB', 'NUMSUB', 'asgi__group__G') === 'asgi__group__G\n1\n', 3000, 'the lingering subscription to go');
    expect(a.subscriptionCounts().groups).toBe(0);
  });

  test('a send from another process to a full channel of this one is skipped, counted and logged, never silently', async () => {
    const warnings: object[] = [];
    const logger = { info() {}, warn: (fields: object) => warnings.push(fields), error() {} };
    const [receiver, sender] = [make({ capacity: 2, logger }), make()];
    const channel = await receiver.newChannel();
    for (let n = 0; n < 5; n++) await sender.send(channel, { type: 'n', n });
    await until(() => receiver.skippedFull === 3, 5000, 'three skips counted');
    expect((await receiver.receive(channel)).n).toBe(0);
    expect((await receiver.receive(channel)).n).toBe(1);
    expect(warnings).toEqual([expect.objectContaining({ channel, skipped: 1 }), expect.objectContaining({ channel, skipped: 2 })]);
  });

  test('a named channel (worker) is subscribed on the first receive and gets sends from another process', async () => {
    const [worker, web] = [make(), make()];
    const job = worker.receive('thumbnails.generate');
    await expect(nextMessage(worker, 'not-yet', 10)).resolves.toBe('timeout');
    await poll(() => fixture.server.cli('PUBSUB', 'NUMSUB', 'thumbnails.generate') === 'thumbnails.generate\n1\n', 500, 10);
    await web.send('thumbnails.generate', { type: 'thumbnails.generate', id: 7 });
    expect(await job).toEqual({ type: 'thumbnails.generate', id: 7 });
    expect(worker.subscriptionCounts().named).toBe(2);
  });

  test('speaks channels_redis wire format: msgpack on <prefix>__group__G and on the channel name', async () => {
    const layer = make({ prefix: 'custom' });
    const raw = createClient({ url: fixture.server.url });
    raw.on('error', () => {});
    await raw.connect();
    try {
      const channel = await layer.newChannel();
      await layer.groupAdd('room', channel);
      // A Django process publishes msgpack.packb(message) on these exact Redis channels.
      await raw.publish('custom__group__room', Buffer.from(encode({ type: 'from.django', n: 1 })));
      expect(await layer.receive(channel)).toEqual({ type: 'from.django', n: 1 });
      await raw.publish(channel, Buffer.from(encode({ type: 'direct', n: 2 })));
      expect(await layer.receive(channel)).toEqual({ type: 'direct', n: 2 });

      // And what we publish is exactly msgpack of the message (python: msgpack.packb -> 82 a4 74 79 ...).
      const seen = new Promise<Buffer>((resolve) => {
        const sub = raw.duplicate();
        sub.on('error', () => {});
        void sub.connect().then(() =>
          sub.subscribe('custom__group__watch', (message: Buffer) => {
            resolve(message);
            void sub.close();
          }, true).then(() => layer.groupSend('watch', { type: 't', n: 1 })),
        );
      });
      expect((await seen).toString('hex')).toBe(Buffer.from(encode({ type: 't', n: 1 })).toString('hex'));
    } finally {
      await raw.close();
    }
  });

  test('groupSend to a group whose local memberships expired releases its subscription', async () => {
    const layer = make({ groupExpiry: 1 });
    const channel = await layer.newChannel();
    await layer.groupAdd('fleeting', channel);
    // Past groupExpiry with a margin (memberships expire in tenths of a second, timers fire on whole ms):
    // the elapsed time is the condition under test.
    await new Promise((r) => setTimeout(r, 1300));
    await layer.groupSend('fleeting', { type: 'late' });
    await poll(() => layer.subscriptionCounts().groups === 0, 3000, 10);
    expect(layer.subscriptionCounts().groups).toBe(0);
    expect(await nextMessage(layer, channel, 100)).toBe('timeout');
  });
});

describeRedis('RedisPubSubChannelLayer on two sharded hosts', () => {
  const servers: RedisServer[] = [];
  beforeAll(async () => {
    servers.push(await RedisServer.start(), await RedisServer.start());
  });
  afterAll(() => Promise.all(servers.map((server) => server.close())));
  const urls = () => servers.map((server) => server.url);

  describeLayerConformance('RedisPubSubChannelLayer (two hosts)', {
    create: async (options) => new RedisPubSubChannelLayer({ ...options, urls: urls() }),
    ...PUBSUB_FLAGS,
    redis: hostsControl(() => servers),
  });

  test('groups live on the host channels_redis picks, and the process pattern on every host', async () => {
    const layer = new RedisPubSubChannelLayer({ urls: urls() });
    try {
      const channel = await layer.newChannel();
      // asgi__group__room hashes to host 1 of 2, asgi__group__chat_lobby to host 0 (python's _consistent_hash).
      expect(consistentHash('asgi__group__room', 2)).toBe(1);
      expect(consistentHash('asgi__group__chat_lobby', 2)).toBe(0);
      await layer.groupAdd('room', channel);
      await layer.groupAdd('chat_lobby', channel);
      expect(servers[1].cli('PUBSUB', 'CHANNELS')).toBe('asgi__group__room\n');
      expect(servers[0].cli('PUBSUB', 'CHANNELS')).toBe('asgi__group__chat_lobby\n');
      for (const server of servers) expect(server.cli('PUBSUB', 'NUMPAT').trim()).toBe('1');
    } finally {
      await layer.close();
    }
  });
});
