import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import pino from 'pino';
import { application, http } from '../../routing';
import { type ChannelLayer, type Logger, RedisChannelLayer, RedisPubSubChannelLayer, Server } from '../../src';
import { Inbox, openClient } from '../support/sockets';
import { RedisServer, describeRedis } from '../support/redis';
import { until } from '../support/wait';

/** A pino logger whose lines the test can read. */
function capturingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/**
 * Two servers of the demo app (routing.ts), each with its own layer from `layerFor`, on one private
 * Redis with DEBUG enabled (the stall tests use DEBUG SLEEP; the setting survives a restart). Opened
 * before the describe's tests and closed after them; `join(i, room)` opens a chat client on server i.
 */
function demoServersOnRedis(layerFor: (url: string) => ChannelLayer, logger: Logger) {
  const inboxes: Inbox[] = [];
  const fx = {
    redis: undefined as unknown as RedisServer,
    servers: [] as Server[],
    base: (i: number) => `http://127.0.0.1:${fx.servers[i].address().port}`,
    join: async (i: number, room: string) => {
      const inbox = new Inbox(await openClient(`${fx.base(i).replace('http', 'ws')}/ws/chat/${room}/`));
      inboxes.push(inbox);
      return inbox;
    },
  };
  beforeAll(async () => {
    fx.redis = await RedisServer.start({ args: ['--enable-debug-command', 'yes'] });
    fx.servers = [0, 1].map(
      () => new Server({ app: application, http, port: 0, heartbeatInterval: 0, logger, channelLayer: layerFor(fx.redis.url) }),
    );
    await Promise.all(fx.servers.map((server) => server.listen()));
  });
  afterAll(async () => {
    for (const inbox of inboxes) inbox.ws.terminate();
    for (const server of fx.servers) {
      await server.close();
      await server.channelLayer.close();
    }
    await fx.redis.close();
  });
  return fx;
}

/**
 * Stalls Redis for 2 s (DEBUG SLEEP) while `sender` sends a chat message: the message still reaches
 * `remote` (a client of another server) once Redis answers again, and that server stays healthy.
 */
async function expectStallSurvived(redis: RedisServer, sender: Inbox, remote: Inbox, remoteBase: string): Promise<void> {
  const started = Date.now();
  const sleeping = new Promise<string>((resolve) =>
    execFile('redis-cli', ['-p', String(redis.port), 'DEBUG', 'SLEEP', '2'], (_error, stdout) => resolve(stdout.trim())),
  );
  // No event says Redis has begun DEBUG SLEEP; 100 ms lets redis-cli deliver it, well inside the 2 s stall.
  await new Promise((resolve) => setTimeout(resolve, 100));
  sender.ws.send(JSON.stringify({ message: 'during the stall' }));
  expect(await sleeping).toBe('OK');
  expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  const frames: unknown[] = [];
  await until(async () => {
    try {
      frames.push(await remote.nextJson(500));
    } catch {
      /* keep polling */
    }
    return frames.some((frame) => (frame as { message?: string }).message === 'during the stall');
  }, 10_000);
  expect((await fetch(`${remoteBase}/healthz`)).status).toBe(200);
}

describeRedis('a server on the Redis pub/sub layer through Redis faults', () => {
  const captured = capturingLogger();
  const fx = demoServersOnRedis((url) => new RedisPubSubChannelLayer({ url, logger: captured.logger }), captured.logger);
  const base = fx.base;
  const join = (i: number) => fx.join(i, 'faults');

  test('Redis down: healthz 200 degraded, readyz 503, local delivery works, sender told, one log line per change; back: all again', async () => {
    const [a, b, remote] = [await join(0), await join(0), await join(1)];
    a.ws.send(JSON.stringify({ message: 'before' }));
    for (const inbox of [a, b, remote]) expect(await inbox.nextJson()).toEqual({ message: 'before', time: expect.any(Number), offset: 1, epoch: expect.any(String) });

    await fx.redis.stop();
    await until(async () => (await fetch(`${base(0)}/readyz`)).status === 503);
    const health = await fetch(`${base(0)}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'degraded', layer: { state: 'degraded', backend: 'redis-pubsub' } });

    for (let i = 0; i < 20; i++) a.ws.send(JSON.stringify({ message: `down ${i}` }));
    // Delivered here without an offset: nothing could record it (recovery never replays it).
    for (let i = 0; i < 20; i++) {
      expect(await b.nextJson()).toEqual({ message: `down ${i}`, time: expect.any(Number) });
    }
    const toSender: unknown[] = [];
    for (let i = 0; i < 40; i++) toSender.push(await a.nextJson());
    expect(toSender).toContainEqual({ message: 'down 0', time: expect.any(Number) });
    expect(toSender).toContainEqual({ error: expect.stringMatching(/not delivered to other servers/) });
    expect(remote.pending).toBe(0);
    // 20 failed sends, yet the outage is logged per state change, not per message.
    const lost = captured.lines.filter((line) => /lost Redis/.test(line.msg));
    expect(lost.length).toBeLessThanOrEqual(4); // each server's publisher and subscriber links
    expect(captured.lines.filter((line) => line.level >= 50)).toEqual([]);

    await fx.redis.start();
    await until(async () => (await fetch(`${base(0)}/readyz`)).status === 200 && (await fetch(`${base(1)}/readyz`)).status === 200);
    // Resubscription completes a moment after the links are ready: retry until the remote member hears.
    await until(async () => {
      a.ws.send(JSON.stringify({ message: 'after' }));
      try {
        for (;;) {
          const frame = (await remote.nextJson(300)) as { message?: string };
          if (frame.message === 'after') return true;
        }
      } catch {
        return false;
      }
    }, 15_000);
  }, 40_000);

  test('Redis stalled (DEBUG SLEEP 2): nothing crashes and delivery resumes', async () => {
    await expectStallSurvived(fx.redis, await join(0), await join(1), base(1));
  }, 30_000);
});

describeRedis('servers on the Redis list layer through Redis faults', () => {
  const fx = demoServersOnRedis((url) => new RedisChannelLayer({ url }), pino({ level: 'silent' }));
  const base = fx.base;
  const join = (i: number, room = 'restart') => fx.join(i, room);

  test('Redis stalled (DEBUG SLEEP 2): nothing crashes and delivery resumes', async () => {
    await expectStallSurvived(fx.redis, await join(0, 'stall'), await join(1, 'stall'), base(1));
  }, 30_000);

  test('clients still connected hear each other again; a chat joined while down is accepted, told of undelivered sends, and a member after', async () => {
    const [a, remote] = [await join(0), await join(1)];
    a.ws.send(JSON.stringify({ message: 'before' }));
    for (const inbox of [a, remote]) expect(await inbox.nextJson(5000)).toMatchObject({ message: 'before' });

    await fx.redis.stop(); // SIGKILL: Redis comes back with no groups at all
    await until(async () => (await fetch(`${base(0)}/readyz`)).status === 503, 10_000, 'readyz 503');
    const newcomer = await join(0); // accepted (not HTTP 500): its membership waits for Redis
    newcomer.ws.send(JSON.stringify({ message: 'while down' }));
    const toNewcomer = [await newcomer.nextJson(5000), await newcomer.nextJson(5000)];
    expect(toNewcomer).toContainEqual(expect.objectContaining({ message: 'while down' }));
    expect(toNewcomer).toContainEqual({ error: expect.stringMatching(/not delivered to other servers/) });
    expect(await a.nextJson(5000)).toMatchObject({ message: 'while down' }); // same process: still served

    await fx.redis.start();
    await until(async () => (await fetch(`${base(0)}/readyz`)).status === 200 && (await fetch(`${base(1)}/readyz`)).status === 200, 15_000, 'readyz 200');
    await until(() => fx.redis.cli('ZCARD', 'asgi:group:chat_restart').trim() === '3', 5000, 'memberships back in Redis');
    remote.ws.send(JSON.stringify({ message: 'after' }));
    for (const inbox of [a, newcomer, remote]) expect(await inbox.nextJson(5000)).toMatchObject({ message: 'after' });
  }, 40_000);
});
