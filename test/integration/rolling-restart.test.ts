// A rolling restart: SIGTERM on one `channelkit serve` must leave the shared Redis as it was, so the
// other processes (channelkit and Django) keep their groups, their queued messages and their delivery.
import { DjangoProcess, djangoUnavailable } from '../interop/django-process';
import { ServerProcess } from '../support/processes';
import { RedisServer, describeRedis } from '../support/redis';
import { Inbox, openClient } from '../support/sockets';

const unavailable = djangoUnavailable();
if (unavailable && process.env.CI === 'true') throw new Error(`${unavailable}: the rolling-restart tests need Django Channels under CI`);
const describeDjango = unavailable ? describe.skip : describeRedis;

const CHAT = { type: 'chat.message', message: 'after the restart' };

function describeRollingRestart(title: string, layer: 'list' | 'pubsub'): void {
  describeDjango(title, () => {
    let redis: RedisServer;
    let servers: ServerProcess[] = [];
    const inboxes: Inbox[] = [];
    const djangos: DjangoProcess[] = [];
    const django = (...args: string[]) => {
      const child = new DjangoProcess(layer === 'list' ? 'core' : 'pubsub', [redis.url], args);
      djangos.push(child);
      return child;
    };

    beforeAll(async () => {
      redis = await RedisServer.start();
      const env = { REDIS_URL: redis.url, ...(layer === 'list' ? { CHANNEL_LAYER: 'list' } : {}) };
      servers = [new ServerProcess(env), new ServerProcess(env)];
      await Promise.all(servers.map((server) => server.ready));
    }, 60_000);

    afterAll(async () => {
      for (const inbox of inboxes) inbox.ws.terminate();
      for (const child of djangos) child.kill();
      await Promise.all(servers.map((server) => server.stop()));
      await redis.close();
    });

    test('SIGTERM on one server: the other server, Django\'s group and Django\'s queued message are untouched', async () => {
      const ports = await Promise.all(servers.map((server) => server.ready));
      const [leaving, staying] = await Promise.all(
        ports.map(async (port) => new Inbox(await openClient(`ws://127.0.0.1:${port}/ws/chat/lobby/`))),
      );
      inboxes.push(leaving, staying);
      // Both servers are in the room (each one's member reached by the other's chat message).
      staying.ws.send(JSON.stringify({ message: 'before' }));
      expect(await leaving.nextJson(5000)).toMatchObject({ message: 'before' });
      expect(await staying.nextJson(5000)).toMatchObject({ message: 'before' });

      const member = django('join', 'chat_lobby');
      const djangoChannel = await member.ready();
      if (layer === 'list') {
        // A message queued for a Django worker that is not running right now.
        await django('send', 'django.jobs', JSON.stringify({ type: 'job', n: 1 })).succeeded();
        expect(redis.cli('ZCARD', 'asgidjango.jobs').trim()).toBe('1');
        expect(redis.cli('ZRANGE', 'asgi:group:chat_lobby', '0', '-1')).toContain(djangoChannel);
      }

      expect(await servers[0].stop()).toBe(0);
      expect((await leaving.closed).code).toBe(1001);

      if (layer === 'list') {
        expect(redis.cli('ZCARD', 'asgidjango.jobs').trim()).toBe('1');
        expect(redis.cli('ZRANGE', 'asgi:group:chat_lobby', '0', '-1')).toContain(djangoChannel);
      }
      // Delivery goes on: a Django group send reaches the surviving server's client and Django's member.
      await django('group_send', 'chat_lobby', JSON.stringify(CHAT)).succeeded();
      expect(await staying.nextJson(5000)).toMatchObject({ message: CHAT.message });
      expect(await member.message()).toEqual(CHAT);
      await member.succeeded();
      if (layer === 'list') {
        const worker = django('receive', 'django.jobs');
        await worker.ready();
        expect(await worker.message()).toEqual({ type: 'job', n: 1 });
        await worker.succeeded();
      }
      // And the surviving server still carries its own clients' chat.
      staying.ws.send(JSON.stringify({ message: 'still here' }));
      expect(await staying.nextJson(5000)).toMatchObject({ message: 'still here' });
    }, 60_000);
  });
}

describeRollingRestart('rolling restart on the Redis list layer (CHANNEL_LAYER=list) beside Django core', 'list');
describeRollingRestart('rolling restart on the Redis pub/sub layer beside Django pub/sub', 'pubsub');
