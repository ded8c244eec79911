import { createClient } from 'redis';
import type { LayerMessage } from '../../../src/layers/layer';
import { LayerUnavailable } from '../../../src/layers/layer';
import type { LayerLogger } from '../../../src/layers/layer';
import { RedisPubSubChannelLayer } from '../../../src/layers/redis/pubsub';
import { RedisServer, describeRedis, freePort } from '../../support/redis';
import { poll, until } from '../../support/wait';

const noop = (): void => undefined;
const turn = () => new Promise((resolve) => setImmediate(resolve));

function within(promise: Promise<LayerMessage>, ms = 3000): Promise<LayerMessage | 'timeout'> {
  return Promise.race([promise, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref())]);
}

function recordingLogger(): LayerLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (_fields, message) => lines.push(`info ${message}`),
    warn: (_fields, message) => lines.push(`warn ${message}`),
    error: (_fields, message) => lines.push(`error ${message}`),
  };
}

function numsub(server: RedisServer, channel: string): number {
  return Number(server.cli('PUBSUB', 'NUMSUB', channel).split('\n')[1]);
}

describeRedis('Redis faults', () => {
  let server: RedisServer;
  const layers: RedisPubSubChannelLayer[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const make = (options: ConstructorParameters<typeof RedisPubSubChannelLayer>[0] = {}) => {
    const layer = new RedisPubSubChannelLayer({ url: server.url, ...options });
    layers.push(layer);
    return layer;
  };

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    server = await RedisServer.start();
  });
  let stopped = false;
  const stop = async () => {
    stopped = true;
    await server.stop();
  };
  const restart = async () => {
    await server.start();
    stopped = false;
  };
  beforeEach(async () => {
    if (stopped) await restart(); // a test may have left it stopped
  });
  afterEach(async () => {
    await Promise.all(layers.splice(0).map((layer) => layer.close()));
    expect(unhandled).toEqual([]);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server.close();
  });

  test('node-redis v6 replays SUBSCRIBE and PSUBSCRIBE by itself after CLIENT KILL TYPE pubsub', async () => {
    const client = createClient({ url: server.url, socket: { reconnectStrategy: 50 } });
    client.on('error', () => {});
    await client.connect();
    const got: string[] = [];
    await client.subscribe('plain', (message) => got.push(`plain:${message}`));
    await client.pSubscribe('pat.*', (message) => got.push(`pat:${message}`));
    try {
      expect(server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub').trim()).toBe('1');
      await until(() => numsub(server, 'plain') === 1 && server.cli('PUBSUB', 'NUMPAT').trim() === '1', 5000, 'resubscribe');
      server.cli('PUBLISH', 'plain', 'a');
      server.cli('PUBLISH', 'pat.x', 'b');
      await until(() => got.length === 2);
      expect(got).toEqual(['plain:a', 'pat:b']);
    } finally {
      await client.close();
    }
  });

  test('Redis stopped: degraded health, groupSend delivers locally then throws LayerUnavailable fast, no crash; back: every member again', async () => {
    const logger = recordingLogger();
    const [a, b] = [make({ logger }), make()];
    const [ca, cb] = [await a.newChannel(), await b.newChannel()];
    await a.groupAdd('room', ca);
    await b.groupAdd('room', cb);
    const bGot: LayerMessage[] = [];
    await b.listen(cb, { offer: (message) => bGot.push(message) > 0 });
    expect(a.health()).toEqual({ state: 'up', backend: 'redis-pubsub' });
    expect(logger.lines).toEqual(['info channel layer connected']);

    await stop();
    await until(() => a.health().state === 'degraded' && b.health().state === 'degraded', 3000, 'degraded');
    expect(a.health().detail).toMatch(/redis:\/\/127\.0\.0\.1:\d+/);

    const started = Date.now();
    await expect(a.groupSend('room', { type: 'while.down' })).rejects.toBeInstanceOf(LayerUnavailable);
    await expect(a.send(cb, { type: 'to.b' })).rejects.toMatchObject({ code: 'LAYER_UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(200);
    expect(await within(a.receive(ca), 500)).toEqual({ type: 'while.down' }); // local member still served
    // A quiet period: nothing can be awaited for a message that must not arrive.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(bGot).toEqual([]); // the other process missed it, as the error said
    await a.send(ca, { type: 'own.channel' }); // a channel of this process needs no Redis
    expect(await a.receive(ca)).toEqual({ type: 'own.channel' });
    // A group joined while down is subscribed once Redis is back.
    const late = await a.newChannel();
    await a.groupAdd('late', late);

    await new Promise((resolve) => setTimeout(resolve, 500)); // several failed reconnect attempts
    expect(logger.lines.filter((line) => line.startsWith('warn'))).toHaveLength(1);

    await restart();
    await until(() => a.health().state === 'up' && b.health().state === 'up', 8000, 'reconnect');
    expect(logger.lines).toEqual([
      'info channel layer connected',
      'warn channel layer lost Redis; reconnecting, cross-process sends fail meanwhile',
      'info channel layer reconnected',
    ]);
    await until(() => numsub(server, 'asgi__group__room') === 2 && numsub(server, 'asgi__group__late') === 1, 3000, 'resubscribed');
    expect(server.cli('PUBSUB', 'NUMPAT').trim()).toBe('2');

    await b.groupSend('room', { type: 'after', n: 1 });
    expect(await within(a.receive(ca))).toEqual({ type: 'after', n: 1 });
    await until(() => bGot.length > 0, 3000, 'b to get the group message');
    expect(bGot).toEqual([{ type: 'after', n: 1 }]);
    await b.groupSend('late', { type: 'late' });
    expect(await within(a.receive(late))).toEqual({ type: 'late' });
    await b.send(ca, { type: 'direct' }); // the process pattern is back too
    expect(await within(a.receive(ca))).toEqual({ type: 'direct' });
  });

  test('CLIENT KILL TYPE pubsub: the layer resubscribes groups and its pattern', async () => {
    const [a, b] = [make(), make()];
    const ca = await a.newChannel();
    await a.groupAdd('killed', ca);
    server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await until(() => numsub(server, 'asgi__group__killed') === 1 && server.cli('PUBSUB', 'NUMPAT').trim() === '2', 5000, 'resubscribe');
    // Redis shows the resubscription before node-redis marks the client ready (it resubscribes in
    // its connection initiator): 'up' is the layer's word that sends go through.
    await until(() => a.health().state === 'up' && b.health().state === 'up', 5000, 'up');
    await b.groupSend('killed', { type: 'g' });
    await b.send(ca, { type: 'c' });
    expect(await within(a.receive(ca))).toEqual({ type: 'g' });
    expect(await within(a.receive(ca))).toEqual({ type: 'c' });
  });

  test('the reported flake: Redis shows the resubscription before node-redis is ready; the layer says degraded until then, and up means sends go through', async () => {
    const a = make();
    const channel = await a.newChannel();
    for (let i = 0; i < 8; i++) await a.groupAdd(`window${i}`, channel);
    let window = 0;
    for (let round = 0; round < 30; round++) {
      server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
      // What the flaky test waited for: Redis's view. node-redis resubscribes in its connection
      // initiator and sets isReady only after every reply, so this is seen before the client is ready.
      await until(() => numsub(server, 'asgi__group__window0') === 1, 5000, "Redis's view of the resubscription", 0);
      if (a.health().state !== 'up') {
        window++;
        await expect(a.groupSend('window1', { type: 'early' })).rejects.toBeInstanceOf(LayerUnavailable);
      }
      await until(() => a.health().state === 'up', 5000, 'up', 0);
      await expect(a.groupSend('window1', { type: 'probe', round })).resolves.toBeUndefined();
    }
    expect(window).toBeGreaterThan(0); // the window is real (30 of 30 rounds here): wait for 'up', not for Redis
  }, 60_000);

  test('CLIENT KILL under load, 30 times: once the layer reports up, a send from it goes through at once', async () => {
    const [a, b] = [make(), make()];
    const members: string[] = [];
    for (let i = 0; i < 40; i++) {
      const channel = await a.newChannel();
      members.push(channel);
      await a.groupAdd(`load${i % 8}`, channel);
      await a.listen(channel, { offer: () => true });
    }
    const probe = await a.newChannel();
    await a.groupAdd('probe', probe);
    const heard: LayerMessage[] = [];
    await a.listen(probe, { offer: (message) => heard.push(message) > 0 });
    // Load: b group-sends all the time; those caught by a kill may fail, that is not under test.
    let loading = true;
    const load = (async () => {
      while (loading) {
        await Promise.all(Array.from({ length: 16 }, (_, i) => b.groupSend(`load${i % 8}`, { type: 'load', pad: 'x'.repeat(256) }).catch(noop)));
        await turn();
      }
    })();
    const refused: string[] = [];
    try {
      for (let round = 0; round < 30; round++) {
        // Subscribers mostly (the reported case); every third round the publishers too.
        server.cli('CLIENT', 'KILL', 'TYPE', round % 3 === 2 ? 'normal' : 'pubsub');
        // Poll on every turn, so the sends go out the moment the layers say up again (a reconnect can
        // be quicker than a timer: the down state is not awaited as such).
        await poll(() => a.health().state !== 'up' || b.health().state !== 'up', 500, 0);
        await until(() => a.health().state === 'up' && b.health().state === 'up', 10_000, 'both layers up', 0);
        for (const [name, layer] of [['a', a], ['b', b]] as const) {
          await layer.groupSend('probe', { type: 'probe', round, from: name }).catch((error: Error) => refused.push(`round ${round} ${name}: ${error.message}`));
        }
      }
    } finally {
      loading = false;
      await load;
    }
    expect(refused).toEqual([]);
    await until(() => heard.length === 60, 5000, 'every probe heard');
  }, 60_000);

  test('Redis unreachable at start: newChannel and groupAdd do not hang, and it all works once Redis appears', async () => {
    const port = await freePort();
    const logger = recordingLogger();
    const layer = make({ url: `redis://127.0.0.1:${port}`, logger });
    const channel = await layer.newChannel();
    await layer.groupAdd('early', channel);
    expect(layer.health()).toMatchObject({ state: 'degraded', detail: expect.stringMatching(/ECONNREFUSED/) });
    await expect(layer.groupSend('early', { type: 'x' })).rejects.toBeInstanceOf(LayerUnavailable);
    expect(await layer.receive(channel)).toEqual({ type: 'x' });

    const late = await RedisServer.start({ port });
    try {
      await until(() => layer.health().state === 'up', 8000, 'connect');
      await until(() => numsub(late, 'asgi__group__early') === 1, 3000, 'subscribe');
      const other = make({ url: late.url });
      await other.groupSend('early', { type: 'y' });
      expect(await within(layer.receive(channel))).toEqual({ type: 'y' });
      expect(logger.lines).toEqual(['warn channel layer cannot reach Redis; reconnecting, cross-process sends fail meanwhile', 'info channel layer connected']);
    } finally {
      await Promise.all(layers.splice(0).map((l) => l.close()));
      await late.close();
    }
  });

  test('close() while Redis is down releases every connection at once', async () => {
    const layer = make();
    await layer.newChannel();
    await stop();
    await until(() => layer.health().state === 'degraded', 3000, 'degraded');
    const started = Date.now();
    await layer.close();
    expect(Date.now() - started).toBeLessThan(100);
    expect(layer.health()).toEqual({ state: 'closed', backend: 'redis-pubsub' });
  });
});
