// The `channelkit` command as a user meets it: startup errors, messages, layers, exit codes.
import { join } from 'node:path';
import { ServerProcess, runCli } from './support/processes';
import { RedisChannelLayer, RedisPubSubChannelLayer, type ChannelLayer } from '../src';
import { RedisServer, describeRedis, freePort } from './support/redis';
import { Inbox, handshakeStatus, openClient } from './support/sockets';
import { until } from './support/wait';

const ROOT = join(__dirname, '..');
/** No Redis from the environment running the tests leaks into a child unless a test sets it. */
const NO_REDIS = { REDIS_URL: '', REDIS_CLUSTER_URL: '', CHANNEL_LAYER: '', PORT: '0' };
/** A command that should fail at startup and is still running after this is killed (`killed`). */
const STARTUP_MS = 8000;

describe('channelkit serve: route mistakes fail at startup', () => {
  test('a routing module without `application` exits non-zero naming the file and the reason', async () => {
    const result = await runCli(['serve', 'test/fixtures/no-application.ts'], NO_REDIS, STARTUP_MS);
    expect(result.killed).toBe(false);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(join(ROOT, 'test', 'fixtures', 'no-application.ts'));
    expect(result.stderr).toMatch(/exports no `application`/);
  });

  test('an unbalanced route pattern exits non-zero naming the file and the pattern', async () => {
    const result = await runCli(['serve', 'test/fixtures/bad-route.ts'], NO_REDIS, STARTUP_MS);
    expect(result.killed).toBe(false);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(join(ROOT, 'test', 'fixtures', 'bad-route.ts'));
    expect(result.stderr).toMatch(/unbalanced parentheses/);
  });

  test('a routing module that does not exist exits non-zero naming it', async () => {
    const result = await runCli(['serve', 'test/fixtures/missing.ts'], NO_REDIS);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(join(ROOT, 'test', 'fixtures', 'missing.ts'));
  });
});

describe("channelkit serve with the user's own TypeScript module importing 'channelkit'", () => {
  test('answers 404 for an unknown path and serves the consumer (one copy of the framework)', async () => {
    const server = new ServerProcess(NO_REDIS, ['serve', 'test/fixtures/app-routing.ts']);
    try {
      const port = await server.ready;
      expect(await handshakeStatus(`ws://127.0.0.1:${port}/ws/nowhere/`)).toBe(404);
      expect(await handshakeStatus(`ws://127.0.0.1:${port}/ws/echo/x/`)).toBe(404);
      const ws = await openClient(`ws://127.0.0.1:${port}/ws/echo/41/`);
      const inbox = new Inbox(ws);
      ws.send(JSON.stringify({ hi: 1 }));
      expect(await inbox.nextJson()).toEqual({ next: 42, value: { hi: 1 } });
      ws.close();
      await inbox.closed;
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(server.output).not.toMatch(/handshake failed/);
  });
});

describe('channelkit: clear messages for configuration mistakes', () => {
  test.each(['localhost:6379', 'http://x', 'redis://'])('REDIS_URL=%s names the variable and the expected form, for serve, worker and publish', async (url) => {
    for (const args of [['serve'], ['worker', 'notifications.announce'], ['publish', '--group', 'g', '{"type":"x"}']]) {
      const result = await runCli(args, { ...NO_REDIS, REDIS_URL: url }, STARTUP_MS);
      expect(result.killed).toBe(false);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/REDIS_URL/);
      expect(result.stderr).toContain('redis://host:port');
    }
  });

  test('a REDIS_URL mistake never shows its password', async () => {
    const result = await runCli(['serve'], { ...NO_REDIS, REDIS_URL: 'http://user:hunter2@x:1' }, STARTUP_MS);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/REDIS_URL/);
    expect(result.stderr).not.toContain('hunter2');
  });

  test.each(['abc', '70000', '-1', '80.5'])('PORT=%j is refused with the expected range', async (port) => {
    const result = await runCli(['serve'], { ...NO_REDIS, PORT: port }, STARTUP_MS);
    expect(result.killed).toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/PORT: .* expected an integer from 0 to 65535/);
  });

  test('an unknown subcommand prints the usage, names the command and exits 2', async () => {
    const result = await runCli(['frobnicate'], NO_REDIS);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
    expect(result.stderr).toMatch(/usage:\n\s+channelkit serve/);
    // The one layer rule is in the usage, --layer on all three commands.
    expect(result.stderr.match(/channelkit (serve|worker|publish) \[--layer L\]/g)).toHaveLength(3);
  });

  test('CHANNEL_LAYER or --layer with an unknown value is refused', async () => {
    const fromEnv = await runCli(['serve'], { ...NO_REDIS, REDIS_URL: 'redis://127.0.0.1:1', CHANNEL_LAYER: 'lists' }, STARTUP_MS);
    expect(fromEnv.code).toBe(1);
    expect(fromEnv.stderr).toMatch(/CHANNEL_LAYER: "lists" .*pubsub or list/);
    const fromFlag = await runCli(['publish', '--layer', 'queue', '--group', 'g', '{"type":"x"}'], { ...NO_REDIS, REDIS_URL: 'redis://127.0.0.1:1' }, STARTUP_MS);
    expect(fromFlag.code).toBe(1);
    expect(fromFlag.stderr).toMatch(/--layer: "queue" .*pubsub or list/);
  });

  test.each(['pubsub', 'list'])('Redis unreachable at startup (%s) is said so, with the URL redacted, and the server keeps serving', async (layer) => {
    const port = await freePort();
    const server = new ServerProcess({ ...NO_REDIS, REDIS_URL: `redis://:hunter2@127.0.0.1:${port}`, CHANNEL_LAYER: layer });
    try {
      const httpPort = await server.ready;
      await until(() => server.output.includes('Redis unreachable at startup'), 10_000, 'the startup warning');
      expect(server.output).toContain(`redis://127.0.0.1:${port}`);
      expect(server.output).not.toContain('hunter2');
      expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});

describe('channelkit worker: one rule for the layer', () => {
  test('a worker with no Redis configured exits non-zero: in memory it could never receive a job', async () => {
    const result = await runCli(['worker', 'notifications.announce'], NO_REDIS, STARTUP_MS);
    expect(result.killed).toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/REDIS_URL/);
    expect(result.stderr).toMatch(/never receive/);
    expect(result.stdout).not.toContain('worker started');
  });
});

describeRedis('serve, worker and publish on one Redis: the same layer by the same rule', () => {
  let redis: RedisServer;
  const JOB = '{"type": "announce", "title": "Deploy", "body": "at 5pm"}';

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis.close());

  /** A listener in group 'notifications' on `layer`: what the announcement worker group-sends to. */
  async function notificationsListener(layer: ChannelLayer): Promise<string> {
    const channel = await layer.newChannel();
    await layer.groupAdd('notifications', channel);
    return channel;
  }

  test.each([
    ['pubsub (the default)', {}],
    ['list', { CHANNEL_LAYER: 'list' }],
    ['list, by --layer', { LAYER_FLAG: 'list' }],
  ])('on %s a published job reaches the worker and its group send reaches members on that layer', async (_name, extra: Record<string, string>) => {
    const kind = extra.CHANNEL_LAYER ?? extra.LAYER_FLAG ?? 'pubsub';
    const flag = extra.LAYER_FLAG ? ['--layer', extra.LAYER_FLAG] : [];
    const env = { ...NO_REDIS, REDIS_URL: redis.url, CHANNEL_LAYER: extra.CHANNEL_LAYER ?? '', LOG_LEVEL: 'debug' };
    const layer = kind === 'list' ? new RedisChannelLayer({ urls: [redis.url] }) : new RedisPubSubChannelLayer({ urls: [redis.url] });
    const worker = new ServerProcess(env, ['worker', ...flag, 'notifications.announce']);
    try {
      const listener = await notificationsListener(layer);
      await worker.ready;
      if (kind === 'pubsub') {
        // On pub/sub a job reaches only a worker already subscribed.
        await until(() => /notifications\.announce\s+1/.test(redis.cli('PUBSUB', 'NUMSUB', 'notifications.announce')), 10_000, 'the worker to subscribe');
      }
      const sent = await runCli(['publish', ...flag, '--channel', 'notifications.announce', JOB], env);
      expect(sent.code).toBe(0);
      expect(sent.stdout).toContain(kind === 'list' ? 'queued to channel notifications.announce' : 'published to channel notifications.announce (1 receiver)');
      expect(await layer.receive(listener)).toEqual({ type: 'notification.message', title: 'Deploy', body: 'at 5pm' });
      await until(() => worker.output.includes('"msg":"worker handling job"'), 5000, 'the debug line');
      expect(worker.output).toMatch(/"channel":"notifications.announce","type":"announce","msg":"worker handling job"/);
      expect(worker.output).not.toContain('at 5pm');
      expect(worker.output).not.toContain('unreachable at startup');
    } finally {
      expect(await worker.stop()).toBe(0);
      await layer.flush();
      await layer.close();
    }
  }, 30_000);

  test('on pub/sub, a job published to a channel no worker listens on is an error, not "published"', async () => {
    const sent = await runCli(['publish', '--channel', 'notifications.announce', JOB], { ...NO_REDIS, REDIS_URL: redis.url });
    expect(sent.code).toBe(1);
    expect(sent.stdout).not.toContain('published');
    expect(sent.stderr).toMatch(/no process subscribes to channel notifications\.announce/);
    expect(sent.stderr).toMatch(/channelkit worker notifications\.announce/);
    expect(sent.stderr).toMatch(/CHANNEL_LAYER=list/);
  }, 15_000);

  test('on pub/sub, a group send that reaches no process prints a warning', async () => {
    const sent = await runCli(['publish', '--group', 'empty', '{"type": "x"}'], { ...NO_REDIS, REDIS_URL: redis.url });
    expect(sent.code).toBe(0);
    expect(sent.stderr).toMatch(/warning: .*no process is subscribed to group empty/);
  }, 15_000);
});
