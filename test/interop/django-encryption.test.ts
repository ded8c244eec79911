// channels_redis's symmetric_encryption_keys against a real Django Channels process: shared groups and
// channels both ways, ciphertext in Redis, unknown keys dropped, key rotation without restarts.
import { decode } from '@msgpack/msgpack';
import { createClient, RESP_TYPES } from 'redis';
import { RedisChannelLayer } from '../../src/layers/redis/list';
import { memoryLogger } from '../support/logs';
import { ServerProcess } from '../support/processes';
import { Inbox, openClient } from '../support/sockets';
import { describeRedis, RedisServer } from '../support/redis';
import { until } from '../support/wait';
import { DjangoProcess, djangoUnavailable } from './django-process';

const unavailable = djangoUnavailable();
if (unavailable && process.env.CI === 'true') throw new Error(`${unavailable}; under CI=true the Django interop tests must run`);
const describeDjango = unavailable ? describe.skip : describeRedis;

const KEY = 'shared secret';
const SECRET_TEXT = 'attack at dawn';

/** A queued member as channels_redis writes it: 12 unique bytes, then the body. */
function bodyOf(member: Buffer): Buffer {
  return member.subarray(12);
}

/** The body is a Fernet token (base64url of version 0x80...), and no msgpack of the message. */
function expectSealed(member: Buffer): void {
  const body = bodyOf(member);
  expect(body.toString('latin1')).toMatch(/^gAAAAA[A-Za-z0-9_-]+=*$/);
  expect(member.includes(SECRET_TEXT)).toBe(false);
  expect(member.includes('type')).toBe(false);
  // msgpack reads 'g' (0x67) as the integer 103 with bytes left over: not a message.
  expect(() => decode(body)).toThrow();
}

// channels_redis 4.0 (Debian's) encrypts on its core layer only; its pub/sub layer ignores the keys.
describeDjango('Django interop with symmetric_encryption_keys: list layer (channels_redis.core)', () => {
  let server: RedisServer;
  let raw: ReturnType<typeof rawClient>;
  const layers: RedisChannelLayer[] = [];
  const processes: DjangoProcess[] = [];
  const django = (keys: string[], ...args: string[]) => {
    const child = new DjangoProcess('core', [server.url], args, keys);
    processes.push(child);
    return child;
  };
  const layer = (keys: string[], logger?: ReturnType<typeof memoryLogger>['logger']) => {
    const made = new RedisChannelLayer({ url: server.url, symmetricEncryptionKeys: keys, logger });
    layers.push(made);
    return made;
  };
  function rawClient(url: string) {
    return createClient({ url }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  }

  beforeAll(async () => {
    server = await RedisServer.start();
    raw = rawClient(server.url);
    raw.on('error', () => {});
    await raw.connect();
  });
  afterAll(async () => {
    await raw.close();
    await server.close();
  });
  afterEach(async () => {
    for (const child of processes.splice(0)) child.kill();
    await Promise.all(layers.splice(0).map((made) => made.close()));
  });

  test('groups are shared both ways under the same key', async () => {
    const ours = layer([KEY]);
    const channel = await ours.newChannel();
    await ours.groupAdd('chat_secret', channel);
    const received = ours.receive(channel);
    await django([KEY], 'group_send', 'chat_secret', JSON.stringify({ type: 'chat.message', message: SECRET_TEXT })).succeeded();
    expect(await received).toEqual({ type: 'chat.message', message: SECRET_TEXT });

    const member = django([KEY], 'join', 'chat_secret');
    await member.ready();
    await ours.groupSend('chat_secret', { type: 'chat.message', message: 'héllo ✓', n: 3 });
    expect(await member.message()).toEqual({ type: 'chat.message', message: 'héllo ✓', n: 3 });
    await member.succeeded();
  });

  test('channelkit serve with CHANNEL_LAYER_KEYS and Django with the same keys share a chat room both ways', async () => {
    const serve = new ServerProcess({ REDIS_URL: server.url, REDIS_CLUSTER_URL: '', CHANNEL_LAYER: 'list', CHANNEL_LAYER_KEYS: `${KEY},old key` });
    let client: Inbox | undefined;
    try {
      const port = await serve.ready;
      expect(serve.output).toContain('"keys":2');
      expect(serve.output).not.toContain(KEY);
      const member = django([KEY], 'join', 'chat_vault', '2');
      await member.ready();
      client = new Inbox(await openClient(`ws://127.0.0.1:${port}/ws/chat/vault/`));
      client.ws.send(JSON.stringify({ message: SECRET_TEXT }));
      // The client's own echo says the server's member is in the group; Django's member got it too.
      expect(await client.nextJson(5000)).toMatchObject({ message: SECRET_TEXT });
      expect(await member.message()).toMatchObject({ type: 'chat.message', message: SECRET_TEXT });
      await django([KEY], 'group_send', 'chat_vault', JSON.stringify({ type: 'chat.message', message: 'from django' })).succeeded();
      expect(await client.nextJson(5000)).toMatchObject({ message: 'from django' });
      expect(await member.message()).toEqual({ type: 'chat.message', message: 'from django' });
      await member.succeeded();
    } finally {
      client?.ws.close();
      expect(await serve.stop()).toBe(0);
    }
  }, 30_000);

  test('what either side queues in Redis is a Fernet token, not msgpack', async () => {
    const ours = layer([KEY]);
    await ours.send('jobs.to_django', { type: 'job', message: SECRET_TEXT });
    const queued = await raw.zRange('asgijobs.to_django', 0, -1);
    expect(queued).toHaveLength(1);
    expectSealed(queued[0] as Buffer);
    const worker = django([KEY], 'receive', 'jobs.to_django');
    await worker.ready();
    expect(await worker.message()).toEqual({ type: 'job', message: SECRET_TEXT });
    await worker.succeeded();

    await django([KEY], 'send', 'jobs.from_django', JSON.stringify({ type: 'job', message: SECRET_TEXT })).succeeded();
    const fromDjango = await raw.zRange('asgijobs.from_django', 0, -1);
    expect(fromDjango).toHaveLength(1);
    expectSealed(fromDjango[0] as Buffer);
    expect(await ours.receive('jobs.from_django')).toEqual({ type: 'job', message: SECRET_TEXT });
  });

  test('a group member queued in Redis by channelkit is sealed (with __asgi_channel__ inside the token)', async () => {
    // A Django member that is not reading yet: the message waits in its process key.
    const ours = layer([KEY]);
    const member = django([KEY], 'join', 'chat_waiting', '0');
    const channel = await member.ready();
    await member.succeeded();
    await ours.groupSend('chat_waiting', { type: 'chat.message', message: SECRET_TEXT });
    const key = `asgi${channel.slice(0, channel.indexOf('!') + 1)}`;
    const queued = await raw.zRange(key, 0, -1);
    expect(queued).toHaveLength(1);
    expectSealed(queued[0] as Buffer);
    expect((queued[0] as Buffer).includes('__asgi_channel__')).toBe(false);
  });

  test('a message under an unknown key (or none) is logged and dropped; nothing crashes, the next one arrives', async () => {
    const log = memoryLogger();
    const ours = layer([KEY], log.logger);
    const channel = await ours.newChannel();
    await ours.groupAdd('chat_mixed_keys', channel);
    await django(['some other key'], 'group_send', 'chat_mixed_keys', JSON.stringify({ type: 'chat.message', message: 'stranger' })).succeeded();
    await django([], 'group_send', 'chat_mixed_keys', JSON.stringify({ type: 'chat.message', message: 'plaintext' })).succeeded();
    await django([KEY], 'group_send', 'chat_mixed_keys', JSON.stringify({ type: 'chat.message', message: 'friend' })).succeeded();
    expect(await ours.receive(channel)).toEqual({ type: 'chat.message', message: 'friend' });
    expect(ours.refusedMessages).toBe(2);
    const warnings = log.lines().filter((line) => line.msg === 'dropped encrypted layer message that no key opens');
    expect(warnings.map((line) => line.reason)).toEqual(['signature', 'format']);
    expect(log.text()).not.toContain(KEY);
    expect(ours.health().state).toBe('up');
  });

  test('key rotation: channelkit with [new, old] reads Django on [old] and [new]; Django with [new, old] reads channelkit on [old] then [new]', async () => {
    // channelkit rotated first: one layer, not restarted, while Django processes move from old to new.
    const rotated = layer(['new key', 'old key']);
    const channel = await rotated.newChannel();
    await rotated.groupAdd('chat_rotation', channel);
    const first = rotated.receive(channel);
    await django(['old key'], 'group_send', 'chat_rotation', JSON.stringify({ type: 'chat.message', message: 'under old' })).succeeded();
    expect(await first).toEqual({ type: 'chat.message', message: 'under old' });
    const second = rotated.receive(channel);
    await django(['new key', 'old key'], 'group_send', 'chat_rotation', JSON.stringify({ type: 'chat.message', message: 'under new' })).succeeded();
    expect(await second).toEqual({ type: 'chat.message', message: 'under new' });

    // Django rotated first: one Django process, not restarted, while channelkit moves from old to new.
    const member = django(['new key', 'old key'], 'join', 'chat_rotation_2', '2');
    await member.ready();
    const before = layer(['old key']);
    await before.groupSend('chat_rotation_2', { type: 'chat.message', message: 'channelkit on old' });
    expect(await member.message()).toEqual({ type: 'chat.message', message: 'channelkit on old' });
    const after = layer(['new key', 'old key']);
    await after.groupSend('chat_rotation_2', { type: 'chat.message', message: 'channelkit on new' });
    expect(await member.message()).toEqual({ type: 'chat.message', message: 'channelkit on new' });
    await member.succeeded();
    // And a side still on [old] alone cannot read the new key's messages: rotation needs [new, old] everywhere first.
    const stale = layer(['old key']);
    const staleChannel = await stale.newChannel();
    await stale.groupAdd('chat_rotation_3', staleChannel);
    await after.groupSend('chat_rotation_3', { type: 'chat.message', message: 'unreadable' });
    await until(() => stale.refusedMessages === 1, 10_000, 'the stale side refuses the new key');
  });
});
