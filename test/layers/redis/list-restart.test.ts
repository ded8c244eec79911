// The Redis list layer across a Redis restart: this process's group memberships come back, the
// receive loops resume, and groups joined or left while Redis was down are applied when it returns.
import { LayerUnavailable, type LayerMessage } from '../../../src/layers/layer';
import { RedisChannelLayer } from '../../../src/layers/redis/list';
import { consistentHash } from '../../../src/layers/redis/consistent-hash';
import { RedisServer, describeRedis } from '../../support/redis';
import { until } from '../../support/wait';

function within(promise: Promise<LayerMessage>, ms = 3000): Promise<LayerMessage | 'timeout'> {
  return Promise.race([promise, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref())]);
}

describeRedis('RedisChannelLayer when Redis restarts', () => {
  let server: RedisServer;
  const layers: RedisChannelLayer[] = [];
  const make = () => {
    const layer = new RedisChannelLayer({ url: server.url });
    layers.push(layer);
    return layer;
  };
  const members = (group: string) => server.cli('ZRANGE', `asgi:group:${group}`, '0', '-1').split('\n').filter(Boolean).sort();

  beforeEach(async () => {
    server = await RedisServer.start();
  });
  afterEach(async () => {
    await Promise.all(layers.splice(0).map((layer) => layer.close()));
    await server.close();
  });

  test('killed and restarted empty: the members still connected get a group send from another process again', async () => {
    const a = make();
    const [c1, c2] = [await a.newChannel(), await a.newChannel()];
    await a.groupAdd('room', c1);
    await a.groupAdd('room', c2);
    await a.groupAdd('other', c2);
    const got: LayerMessage[] = [];
    await a.listen(c1, { offer: (message) => got.push(message) > 0 });

    await server.stop(); // SIGKILL, nothing persisted: Redis comes back empty
    await until(() => a.health().state === 'degraded', 5000, 'degraded');
    await server.start();
    await until(() => a.health().state === 'up', 10_000, 'up again');
    // 'up' means the memberships are back, not only the link.
    expect(members('room')).toEqual([c1, c2].sort());
    expect(members('other')).toEqual([c2]);
    expect(Number(server.cli('TTL', 'asgi:group:room'))).toBeGreaterThan(86_000);

    const b = make();
    await b.groupSend('room', { type: 'after', n: 1 });
    await b.groupSend('other', { type: 'after', n: 2 });
    await until(() => got.length === 1, 5000, 'listened member');
    expect(got).toEqual([{ type: 'after', n: 1 }]);
    expect(await within(a.receive(c2))).toEqual({ type: 'after', n: 1 });
    expect(await within(a.receive(c2))).toEqual({ type: 'after', n: 2 });
    // The receive loop is back for direct sends too.
    await b.send(c2, { type: 'direct' });
    expect(await within(a.receive(c2))).toEqual({ type: 'direct' });
  });

  test('while Redis is down: groupAdd succeeds and is applied on return, groupDiscard is applied on return, groupSend reaches local members and throws LayerUnavailable', async () => {
    const a = make();
    const [stays, leaves, joins] = [await a.newChannel(), await a.newChannel(), await a.newChannel()];
    await a.groupAdd('room', stays);
    await a.groupAdd('room', leaves);

    // SHUTDOWN SAVE keeps the data, so a discard made while down must be carried out on return.
    server.cli('SET', 'kept-across-restart', '1');
    server.cli('SHUTDOWN', 'SAVE');
    await server.stop();
    await until(() => a.health().state === 'degraded', 5000, 'degraded');

    await expect(a.groupAdd('room', joins)).resolves.toBeUndefined();
    await expect(a.groupAdd('late', joins)).resolves.toBeUndefined();
    await expect(a.groupDiscard('room', leaves)).resolves.toBeUndefined();
    await expect(a.groupSend('room', { type: 'while.down' })).rejects.toBeInstanceOf(LayerUnavailable);
    expect(await within(a.receive(stays), 500)).toEqual({ type: 'while.down' });
    expect(await within(a.receive(joins), 500)).toEqual({ type: 'while.down' });
    expect(await within(a.receive(leaves), 300)).toBe('timeout');
    // A channel that is not this process's cannot be recorded: the caller learns it was not added.
    await expect(a.groupAdd('room', 'worker.jobs')).rejects.toBeInstanceOf(LayerUnavailable);

    await server.start();
    await until(() => a.health().state === 'up', 10_000, 'up again');
    expect(server.cli('GET', 'kept-across-restart').trim()).toBe('1'); // the old data is back
    expect(members('room')).toEqual([stays, joins].sort());
    expect(members('late')).toEqual([joins]);

    const b = make();
    await b.groupSend('room', { type: 'back' });
    expect(await within(a.receive(stays))).toEqual({ type: 'back' });
    expect(await within(a.receive(joins))).toEqual({ type: 'back' });
    await b.groupSend('late', { type: 'late' });
    expect(await within(a.receive(joins))).toEqual({ type: 'late' });
  });

  test('a groupDiscard removes the record: the membership is not re-added after a restart', async () => {
    const a = make();
    const channel = await a.newChannel();
    await a.groupAdd('room', channel);
    await a.groupDiscard('room', channel);
    await a.groupAdd('kept', channel);
    await server.stop();
    await until(() => a.health().state === 'degraded', 5000, 'degraded');
    await server.start();
    await until(() => a.health().state === 'up', 10_000, 'up again');
    expect(members('kept')).toEqual([channel]);
    expect(members('room')).toEqual([]);
  });
});

describeRedis('RedisChannelLayer on two hosts when one restarts', () => {
  test('the restarted host gets back the memberships of its groups; the other host is left alone', async () => {
    const servers = await Promise.all([RedisServer.start(), RedisServer.start()]);
    const layer = new RedisChannelLayer({ urls: servers.map((server) => server.url) });
    try {
      const names = Array.from({ length: 20 }, (_, i) => `room${i}`);
      const onHost = (host: number) => names.filter((name) => consistentHash(name, 2) === host).slice(0, 2);
      const [first, second] = [onHost(0), onHost(1)];
      const channel = await layer.newChannel();
      for (const group of [...first, ...second]) await layer.groupAdd(group, channel);
      const members = (host: number, group: string) => servers[host].cli('ZRANGE', `asgi:group:${group}`, '0', '-1').trim();

      await servers[1].stop();
      await until(() => layer.health().state === 'degraded', 5000, 'degraded');
      await servers[1].start();
      await until(() => layer.health().state === 'up', 10_000, 'up again');
      for (const group of second) expect(members(1, group)).toBe(channel);
      for (const group of first) expect(members(0, group)).toBe(channel);
      for (const group of first) expect(members(1, group)).toBe(''); // not copied to the wrong host
    } finally {
      await layer.close();
      await Promise.all(servers.map((server) => server.close()));
    }
  });
});
