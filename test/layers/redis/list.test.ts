import { ChannelFull, LayerUnavailable } from '../../../src/layers/layer';
import { RedisChannelLayer, type RedisChannelLayerOptions } from '../../../src/layers/redis/list';
import { describeRedis, layersOnPrivateRedis, RedisServer } from '../../support/redis';
import { until } from '../../support/wait';
import { describeLayerConformance } from '../conformance';

describeRedis('RedisChannelLayer on one private redis-server', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server.close();
  });

  describeLayerConformance('RedisChannelLayer', {
    create: async (options) => new RedisChannelLayer({ url: server.url, ...options }),
    shared: true,
    subSecondExpiry: false,
    ownChannelsLocal: true,
  });
});

describeRedis('RedisChannelLayer sharded over two private redis-servers', () => {
  let servers: RedisServer[];
  beforeAll(async () => {
    servers = await Promise.all([RedisServer.start(), RedisServer.start()]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.close()));
  });

  describeLayerConformance('RedisChannelLayer (2 hosts)', {
    create: async (options) => new RedisChannelLayer({ urls: servers.map((server) => server.url), ...options }),
    shared: true,
    subSecondExpiry: false,
    ownChannelsLocal: true,
  });
});

describeRedis('RedisChannelLayer wire format and outages', () => {
  const fixture = layersOnPrivateRedis((url, options: RedisChannelLayerOptions) => new RedisChannelLayer({ url, ...options }));
  const make = (options: RedisChannelLayerOptions = {}) => fixture.make(options);

  test('keys, scores and expiries are where channels_redis 4 puts them', async () => {
    const layer = make({ expiry: 30, groupExpiry: 120 });
    const channel = await layer.newChannel();
    await layer.groupAdd('chat_lobby', channel);
    await layer.send('worker.jobs', { type: 'job' });
    // No separator between prefix and channel (core.py: `self.prefix + channel_non_local_name`).
    expect(fixture.server.cli('TYPE', 'asgiworker.jobs').trim()).toBe('zset');
    expect(Number(fixture.server.cli('TTL', 'asgiworker.jobs'))).toBeGreaterThan(25);
    expect(fixture.server.cli('TYPE', 'asgi:group:chat_lobby').trim()).toBe('zset');
    expect(fixture.server.cli('ZRANGE', 'asgi:group:chat_lobby', '0', '-1').trim()).toBe(channel);
    expect(Number(fixture.server.cli('TTL', 'asgi:group:chat_lobby'))).toBeGreaterThan(115);
    // The member is binary (random bytes + msgpack) and may hold a newline: the score is the last line.
    const score = Number(fixture.server.cli('ZRANGE', 'asgiworker.jobs', '0', '0', 'WITHSCORES').trim().split('\n').pop());
    expect(Math.abs(score - Date.now() / 1000)).toBeLessThan(5); // seconds since the epoch, as time.time()
  });

  test('channelCapacity applies per channel name to sends and group sends in Redis, as channels_redis', async () => {
    const layer = make({ channelCapacity: { 'worker.small': 2 } });
    for (let i = 0; i < 2; i++) await layer.send('worker.small', { type: 'job', i });
    await expect(layer.send('worker.small', { type: 'job', i: 2 })).rejects.toBeInstanceOf(ChannelFull);
    for (let i = 0; i < 5; i++) await layer.send('worker.big', { type: 'job', i });
    // A group send skips the full key, counted; the other key takes it.
    await layer.groupAdd('workers', 'worker.small');
    await layer.groupAdd('workers', 'worker.big');
    await layer.groupSend('workers', { type: 'all' });
    expect(fixture.server.cli('ZCARD', 'asgiworker.small').trim()).toBe('2');
    expect(fixture.server.cli('ZCARD', 'asgiworker.big').trim()).toBe('6');
    expect(layer.skippedFull).toBe(1);
  });

  test('a message from another process for a full channel of this one is skipped, counted and logged, never silently', async () => {
    const warnings: Array<{ fields: object; message: string }> = [];
    const logger = { info() {}, warn: (fields: object, message: string) => warnings.push({ fields, message }), error() {} };
    const receiver = make({ capacity: 2, logger });
    const sender = make(); // Redis's key has room (capacity 100): the receiver's own queue is what is full
    const channel = await receiver.newChannel();
    for (let n = 0; n < 5; n++) await sender.send(channel, { type: 'n', n });
    await until(() => receiver.skippedFull === 3, 5000, 'three skips counted');
    expect((await receiver.receive(channel)).n).toBe(0);
    expect((await receiver.receive(channel)).n).toBe(1);
    // Logged at the 1st and 2nd skip, not the 3rd (1, 2, 4, 8...).
    expect(warnings.map((w) => w.fields)).toEqual([
      expect.objectContaining({ channel, skipped: 1 }),
      expect.objectContaining({ channel, skipped: 2 }),
    ]);
    expect(warnings[0].message).toMatch(/channel full/);
  });

  test('operations fail fast with LayerUnavailable while Redis is down, and work again after', async () => {
    const layer = make();
    const channel = await layer.newChannel();
    await layer.send(channel, { type: 'before' });
    expect(await layer.receive(channel)).toEqual({ type: 'before' });
    expect(layer.health()).toEqual({ state: 'up', backend: 'redis' });

    await fixture.server.stop();
    await until(() => layer.health().state === 'degraded', 10_000, 'degraded');
    const started = Date.now();
    await expect(layer.send('worker.jobs', { type: 'down' })).rejects.toMatchObject({ code: 'LAYER_UNAVAILABLE' });
    await expect(layer.groupSend('g', { type: 'down' })).rejects.toBeInstanceOf(LayerUnavailable);
    expect(Date.now() - started).toBeLessThan(500);
    expect(layer.health().detail).toContain('127.0.0.1');

    await fixture.server.start();
    await until(() => layer.health().state === 'up', 10_000, 'up');
    // The receive loop reconnected too: a message to the process channel still arrives.
    const received = layer.receive(channel);
    await layer.send(channel, { type: 'after' });
    expect(await received).toEqual({ type: 'after' });
  });

  test('a layer created while Redis is unreachable reports it instead of hanging', async () => {
    const layer = new RedisChannelLayer({ url: 'redis://127.0.0.1:1', connectTimeout: 300 });
    await expect(layer.send('worker.jobs', { type: 'x' })).rejects.toBeInstanceOf(LayerUnavailable);
    expect(layer.health().state).toBe('degraded');
    await layer.close();
    expect(layer.health().state).toBe('closed');
  });
});
