// History on the Redis pub/sub layer: the bytes on the wire, the keys it leaves, the reads a storm costs.
import { createClient } from 'redis';
import { decode, encode } from '@msgpack/msgpack';
import { RedisPubSubChannelLayer } from '../../../src/layers/redis/pubsub';
import { describeRedis, layersOnPrivateRedis } from '../../support/redis';

describeRedis('history on RedisPubSubChannelLayer', () => {
  const fixture = layersOnPrivateRedis((url) => new RedisPubSubChannelLayer({ url }));
  const make = () => fixture.make();

  test('a recorded group send publishes channels_redis msgpack: the message with epoch and offset as its last keys', async () => {
    const layer = make();
    await layer.setHistory('wire', { size: 10, ttl: 60 });
    const raw = createClient({ url: fixture.server.url });
    raw.on('error', () => {});
    await raw.connect();
    try {
      const seen: Buffer[] = [];
      await raw.subscribe('asgi__group__wire', (message: Buffer) => void seen.push(message), true);
      const message = { type: 'chat.message', text: 'héllo', n: 300, nested: { a: [1, 2] }, long: 'x'.repeat(40) };
      await layer.groupSend('wire', message);
      await layer.groupSend('wire', message);
      while (seen.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      const first = decode(seen[0]) as Record<string, unknown>;
      const epoch = first.epoch as string;
      // Byte for byte what msgpack.packb({**message, "epoch": E, "offset": N}) gives.
      expect(seen[0].toString('hex')).toBe(Buffer.from(encode({ ...message, epoch, offset: 1 })).toString('hex'));
      expect(seen[1].toString('hex')).toBe(Buffer.from(encode({ ...message, epoch, offset: 2 })).toString('hex'));
      // The stream keeps the same bytes; it expires with the ttl, the position (meta) a day after it.
      expect(Number(fixture.server.cli('XLEN', 'asgi__stream__{asgi__group__wire}').trim())).toBe(2);
      const streamTtl = Number(fixture.server.cli('TTL', 'asgi__stream__{asgi__group__wire}').trim());
      expect(streamTtl > 0 && streamTtl <= 60).toBe(true);
      const metaTtl = Number(fixture.server.cli('TTL', 'asgi__meta__{asgi__group__wire}').trim());
      expect(metaTtl > 86_400 && metaTtl <= 86_460).toBe(true);
      expect(fixture.server.cli('HGET', 'asgi__history', 'wire').trim()).toBe('1 10 60');
    } finally {
      await raw.close();
    }
  });

  test('thousands of joins of one group within a second: one Redis read in the process', async () => {
    const [a, b] = [make(), make()];
    await b.setHistory('storm', { size: 100, ttl: 60 });
    for (let n = 1; n <= 20; n++) await b.groupSend('storm', { type: 'm', n });
    const channels = await Promise.all(Array.from({ length: 2000 }, () => a.newChannel()));
    const results = await Promise.all(channels.map((channel) => a.groupJoin('storm', channel, { last: 5 })));
    expect(results.every((result) => result.messages.map((m) => m.n).join() === '16,17,18,19,20')).toBe(true);
    expect(a.historyReads).toBe(1);
    expect(b.historyReads).toBe(0);
  });
});
