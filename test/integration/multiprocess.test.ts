import { Inbox, openClient } from '../support/sockets';
import { ServerProcess, runCli } from '../support/processes';
import { RedisServer, describeRedis } from '../support/redis';

describeRedis('several server processes on one Redis', () => {
  let redis: RedisServer;
  let servers: ServerProcess[] = [];
  const inboxes: Inbox[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    servers = [new ServerProcess({ REDIS_URL: redis.url }), new ServerProcess({ REDIS_URL: redis.url })];
    await Promise.all(servers.map((server) => server.ready));
  }, 60_000);

  afterAll(async () => {
    for (const inbox of inboxes) inbox.ws.terminate();
    const codes = await Promise.all(servers.map((server) => server.stop()));
    await redis.close();
    expect(codes).toEqual([0, 0]);
  });

  test('a chat message typed on one process reaches the other; `channelkit publish` reaches both', async () => {
    const ports = await Promise.all(servers.map((server) => server.ready));
    const [a, b] = await Promise.all(ports.map(async (port) => new Inbox(await openClient(`ws://127.0.0.1:${port}/ws/chat/lobby/`))));
    inboxes.push(a, b);
    a.ws.send(JSON.stringify({ message: 'across processes' }));
    // Rooms keep history: every sender records, the CLI too (offsets 1 then 2, one epoch).
    const first = { message: 'across processes', time: expect.any(Number), offset: 1, epoch: expect.any(String) };
    expect(await b.nextJson(5000)).toEqual(first);
    expect(await a.nextJson(5000)).toEqual(first);

    const published = await runCli(['publish', '--group', 'chat_lobby', '{"type": "chat.message", "message": "from the CLI"}'], {
      REDIS_URL: redis.url,
    });
    expect(published).toMatchObject({ code: 0, stdout: 'published to group chat_lobby\n' });
    expect(await a.nextJson(5000)).toEqual({ message: 'from the CLI', offset: 2, epoch: expect.any(String) });
    expect(await b.nextJson(5000)).toEqual({ message: 'from the CLI', offset: 2, epoch: expect.any(String) });
  }, 30_000);

  test('the publisher CLI fails clearly on bad JSON, a bad group name and an unreachable Redis', async () => {
    const badJson = await runCli(['publish', '--group', 'chat_lobby', '{nope'], { REDIS_URL: redis.url });
    expect(badJson.code).toBe(1);
    expect(badJson.stderr).toMatch(/not valid JSON/);
    const badGroup = await runCli(['publish', '--group', 'bad group', '{"type": "x"}'], { REDIS_URL: redis.url });
    expect(badGroup.code).toBe(1);
    expect(badGroup.stderr).toMatch(/invalid group name/);
    const down = await runCli(['publish', '--group', 'g', '{"type": "x"}'], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach Redis/);
  }, 30_000);
});

describeRedis('a worker process on the Redis list layer', () => {
  let redis: RedisServer;
  let processes: ServerProcess[] = [];
  const env = () => ({ REDIS_URL: redis.url, CHANNEL_LAYER: 'list', SECRET: 'test-secret' });

  beforeAll(async () => {
    redis = await RedisServer.start();
    processes = [new ServerProcess(env()), new ServerProcess(env(), ['worker', 'notifications.announce'])];
    await Promise.all(processes.map((child) => child.ready));
  }, 60_000);

  afterAll(async () => {
    const codes = await Promise.all(processes.map((child) => child.stop()));
    await redis.close();
    expect(codes).toEqual([0, 0]);
  });

  test('a job sent to a named channel from a third process is handled by the worker and reaches a client', async () => {
    const { signToken } = await import('../../src/routing/middleware/tokens');
    const port = await processes[0].ready;
    const client = new Inbox(await openClient(`ws://127.0.0.1:${port}/ws/notifications/?token=${signToken('alice', 'test-secret')}`));
    try {
      const sent = await runCli(
        ['publish', '--channel', 'notifications.announce', '{"type": "announce", "title": "Deploy", "body": "at 5pm"}'],
        env(),
      );
      expect(sent).toMatchObject({ code: 0 });
      expect(await client.nextJson(10_000)).toEqual({ type: 'notification', title: 'Deploy', body: 'at 5pm' });
    } finally {
      client.ws.terminate();
    }
  }, 30_000);
});

describeRedis('server processes on a Redis Cluster (REDIS_CLUSTER_URL)', () => {
  let cluster: import('../support/redis-cluster').RedisCluster;
  let servers: ServerProcess[] = [];
  const inboxes: Inbox[] = [];

  beforeAll(async () => {
    const { RedisCluster } = await import('../support/redis-cluster');
    cluster = await RedisCluster.start(3);
    const env = { REDIS_CLUSTER_URL: cluster.urls.join(',') };
    servers = [new ServerProcess(env), new ServerProcess(env)];
    await Promise.all(servers.map((server) => server.ready));
  }, 60_000);

  afterAll(async () => {
    for (const inbox of inboxes) inbox.ws.terminate();
    const codes = await Promise.all(servers.map((server) => server.stop()));
    await cluster?.close();
    expect(codes).toEqual([0, 0]);
  });

  test('chat across the two processes and `channelkit publish` with REDIS_CLUSTER_URL reach both', async () => {
    const ports = await Promise.all(servers.map((server) => server.ready));
    const [a, b] = await Promise.all(ports.map(async (port) => new Inbox(await openClient(`ws://127.0.0.1:${port}/ws/chat/lobby/`))));
    inboxes.push(a, b);
    a.ws.send(JSON.stringify({ message: 'over the cluster' }));
    const first = { message: 'over the cluster', time: expect.any(Number), offset: 1, epoch: expect.any(String) };
    expect(await b.nextJson(5000)).toEqual(first);
    expect(await a.nextJson(5000)).toEqual(first);
    const published = await runCli(['publish', '--group', 'chat_lobby', '{"type": "chat.message", "message": "cluster CLI"}'], {
      REDIS_CLUSTER_URL: cluster.urls.join(','),
    });
    expect(published).toMatchObject({ code: 0 });
    expect(await a.nextJson(5000)).toEqual({ message: 'cluster CLI', offset: 2, epoch: expect.any(String) });
    expect(await b.nextJson(5000)).toEqual({ message: 'cluster CLI', offset: 2, epoch: expect.any(String) });
  }, 30_000);
});
