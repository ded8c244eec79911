// symmetricEncryptionKeys / CHANNEL_LAYER_KEYS on the pub/sub layer, the publisher, the CLI and from-env.
import { execFileSync } from 'node:child_process';
import { decode, encode } from '@msgpack/msgpack';
import { createClient, createCluster, RESP_TYPES } from 'redis';
import { SEALED_FIELD, SealedCodec } from '../../../src/layers/codec';
import { InvalidToken, Sealer } from '../../../src/layers/fernet';
import { channelLayerFromEnv, layerKeysFromEnv } from '../../../src/layers/from-env';
import type { ChannelLayer, LayerMessage } from '../../../src/layers/layer';
import { RedisShardedPubSubChannelLayer } from '../../../src/layers/redis/cluster-pubsub';
import { RedisChannelLayer } from '../../../src/layers/redis/list';
import { RedisPubSubChannelLayer } from '../../../src/layers/redis/pubsub';
import { createPublisher } from '../../../src/publisher';
import { memoryLogger } from '../../support/logs';
import { runCli } from '../../support/processes';
import { RedisServer, describeRedis } from '../../support/redis';
import { RedisCluster } from '../../support/redis-cluster';
import { until } from '../../support/wait';

const KEY = 'pubsub secret';
const SECRET_TEXT = 'attack at dawn';
const NO_REDIS = { REDIS_URL: '', REDIS_CLUSTER_URL: '', CHANNEL_LAYER: '', CHANNEL_LAYER_KEYS: '' };

describe('CHANNEL_LAYER_KEYS', () => {
  test('is a comma-separated list, the encrypting key first; unset or empty means no encryption', () => {
    expect(layerKeysFromEnv({ CHANNEL_LAYER_KEYS: 'new, old' })).toEqual(['new', 'old']);
    expect(layerKeysFromEnv({ CHANNEL_LAYER_KEYS: 'only' })).toEqual(['only']);
    expect(layerKeysFromEnv({})).toBeUndefined();
    expect(layerKeysFromEnv({ CHANNEL_LAYER_KEYS: ' ' })).toBeUndefined();
  });

  test('an empty entry stops startup naming the variable and the expected form, never a key', () => {
    expect(() => layerKeysFromEnv({ CHANNEL_LAYER_KEYS: 'secret-one,,secret-two' })).toThrow(/^CHANNEL_LAYER_KEYS: an empty key .* expected comma-separated keys/);
    let message = '';
    try {
      layerKeysFromEnv({ CHANNEL_LAYER_KEYS: 'secret-one,' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^CHANNEL_LAYER_KEYS: /);
    expect(message).not.toContain('secret-one');
  });
});

describe('SealedCodec', () => {
  const codec = new SealedCodec(new Sealer([KEY, 'old']));

  test('encodes a Fernet token of the msgpack and decodes it back', () => {
    const bytes = codec.encode({ type: 'chat.message', message: SECRET_TEXT });
    expect(Buffer.from(bytes).includes(SECRET_TEXT)).toBe(false);
    expect(codec.decode(bytes)).toEqual({ type: 'chat.message', message: SECRET_TEXT });
  });

  test('opens a sealed record and puts its clear fields on the message', () => {
    const token = new Sealer(['old']).seal(encode({ type: 'chat.message', message: SECRET_TEXT }));
    const record = encode({ [SEALED_FIELD]: token.toString('latin1'), epoch: 'e1', offset: 7 });
    expect(codec.decode(record)).toEqual({ type: 'chat.message', message: SECRET_TEXT, epoch: 'e1', offset: 7 });
  });

  test.each([
    ['plaintext msgpack', encode({ type: 'chat.message', message: SECRET_TEXT })],
    ['a record without a token', encode({ epoch: 'e1', offset: 7 })],
    ['a record under an unknown key', encode({ [SEALED_FIELD]: new Sealer(['nope']).sealString('x') })],
    ['garbage', Buffer.from([0xc1, 0x00])],
  ])('refuses %s with InvalidToken', (_name, bytes) => {
    expect(() => codec.decode(bytes)).toThrow(InvalidToken);
  });
});

/** Resolves with the next payload PUBLISHed on `redisChannel`, read by a plain Redis client. */
async function nextPublished(url: string, redisChannel: string, publish: () => Promise<unknown>): Promise<Buffer> {
  const sub = createClient({ url });
  sub.on('error', () => {});
  await sub.connect();
  try {
    let seen!: (message: Buffer) => void;
    const first = new Promise<Buffer>((resolve) => (seen = resolve));
    // SUBSCRIBE resolves once Redis confirmed it: the publish below cannot come first.
    await sub.subscribe(redisChannel, (message: Buffer) => seen(message), true);
    await publish();
    return await first;
  } finally {
    await sub.close();
  }
}

function expectToken(payload: Buffer): void {
  expect(payload.toString('latin1')).toMatch(/^gAAAAA[A-Za-z0-9_-]+=*$/);
  expect(payload.includes(SECRET_TEXT)).toBe(false);
  expect(() => decode(payload)).toThrow();
}

/** A plain client to read Redis raw, and the payloads published on channels matching `pattern`, as bytes. */
async function rawReader(url: string, pattern: string) {
  const raw = createClient({ url });
  raw.on('error', () => {});
  await raw.connect();
  const published: Buffer[] = [];
  const spy = raw.duplicate();
  spy.on('error', () => {});
  await spy.connect();
  await spy.pSubscribe(pattern, (message) => published.push(message), true);
  return { raw, published, close: async () => void (await Promise.all([spy.close(), raw.close()])) };
}

describeRedis('encrypted Redis pub/sub layer (channels_redis >= 4.2 serializer format)', () => {
  let server: RedisServer;
  const layers: ChannelLayer[] = [];
  const make = <T extends ChannelLayer>(layer: T): T => {
    layers.push(layer);
    return layer;
  };

  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    await Promise.all(layers.splice(0).map((layer) => layer.close()));
  });

  test('group sends and sends cross processes sealed: the Redis channel carries a token Python opens with MultiFernet + msgpack', async () => {
    const sender = make(new RedisPubSubChannelLayer({ url: server.url, symmetricEncryptionKeys: [KEY] }));
    const receiver = make(new RedisPubSubChannelLayer({ url: server.url, symmetricEncryptionKeys: ['other', KEY] }));
    const channel = await receiver.newChannel();
    await receiver.groupAdd('room', channel);
    const message: LayerMessage = { type: 'chat.message', message: SECRET_TEXT, n: 1 };
    const payload = await nextPublished(server.url, 'asgi__group__room', () => sender.groupSend('room', message));
    expectToken(payload);
    expect(await receiver.receive(channel)).toEqual(message);

    // What channels_redis's serializer does on its pub/sub layer: MultiFernet(...).decrypt, then msgpack.unpackb.
    const opened = execFileSync('/usr/bin/python3', [
      '-c',
      [
        'import base64, hashlib, json, sys, msgpack',
        'from cryptography.fernet import Fernet, MultiFernet',
        'f = lambda k: Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest()))',
        `print(json.dumps(msgpack.unpackb(MultiFernet([f("x"), f(${JSON.stringify(KEY)})]).decrypt(sys.stdin.buffer.read()))))`,
      ].join('\n'),
    ], { input: payload });
    expect(JSON.parse(opened.toString())).toEqual(message);

    const direct = await nextPublished(server.url, channel, () => sender.send(channel, { type: 'direct', message: SECRET_TEXT }));
    expectToken(direct);
    expect(await receiver.receive(channel)).toEqual({ type: 'direct', message: SECRET_TEXT });
  });

  test('a message under an unknown key, or in plaintext, is dropped, counted and logged at 1, 2, 4...; the next one arrives', async () => {
    const log = memoryLogger();
    const layer = make(new RedisPubSubChannelLayer({ url: server.url, symmetricEncryptionKeys: [KEY], logger: log.logger }));
    const channel = await layer.newChannel();
    await layer.groupAdd('room', channel);
    const raw = createClient({ url: server.url });
    raw.on('error', () => {});
    await raw.connect();
    try {
      const stranger = new Sealer(['not our key']);
      for (let n = 0; n < 4; n++) await raw.publish('asgi__group__room', stranger.seal(encode({ type: 'x', n })));
      await raw.publish('asgi__group__room', Buffer.from(encode({ type: 'plain', message: SECRET_TEXT })));
      await raw.publish('asgi__group__room', new Sealer([KEY]).seal(encode({ type: 'ok' })));
    } finally {
      await raw.close();
    }
    expect(await layer.receive(channel)).toEqual({ type: 'ok' });
    expect(layer.refusedMessages).toBe(5);
    const warnings = log.lines().filter((line) => line.msg === 'dropped encrypted layer message that no key opens');
    expect(warnings.map((line) => [line.count, line.reason])).toEqual([[1, 'signature'], [2, 'signature'], [4, 'signature']]);
    expect(log.text()).not.toContain(KEY);
    expect(layer.health().state).toBe('up');
  });

  test('history with keys: the Stream and the live payload hold a token, not the text; members and joins get the message with epoch and offset', async () => {
    const sender = make(new RedisPubSubChannelLayer({ url: server.url, symmetricEncryptionKeys: [KEY] }));
    const member = make(new RedisPubSubChannelLayer({ url: server.url, symmetricEncryptionKeys: [KEY] }));
    await sender.setHistory('sealed_*', { size: 10, ttl: 60 });
    const live = await member.newChannel();
    await member.groupAdd('sealed_room', live);
    const { raw, published, close } = await rawReader(server.url, 'asgi__group__sealed_room');
    try {
      await sender.groupSend('sealed_room', { type: 'chat.message', message: SECRET_TEXT });
      const publisher = await createPublisher({ url: server.url, symmetricEncryptionKeys: [KEY] });
      await publisher.groupSend('sealed_room', { type: 'chat.message', message: `${SECRET_TEXT} 2` });
      await publisher.close();
      expect(await member.receive(live)).toEqual({ type: 'chat.message', message: SECRET_TEXT, epoch: expect.any(String), offset: 1 });
      expect(await member.receive(live)).toMatchObject({ message: `${SECRET_TEXT} 2`, offset: 2 });
      const keys = await raw.keys('asgi__stream__*');
      expect(keys).toHaveLength(1);
      const entries = await raw.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).xRange(keys[0], '-', '+');
      expect(entries).toHaveLength(2);
      for (const entry of entries ?? []) for (const value of Object.values(entry.message)) expect((value as Buffer).includes('attack')).toBe(false);
      await until(() => published.length === 2, 5_000, 'the two published payloads');
      for (const payload of published) expect(payload.includes('attack')).toBe(false);
      // A join replays from the sealed Stream, opened with the key.
      const late = make(new RedisPubSubChannelLayer({ url: server.url, symmetricEncryptionKeys: [KEY] }));
      const joined = await late.groupJoin('sealed_room', await late.newChannel(), { last: 5 });
      expect(joined.messages.map((message) => [message.message, message.offset])).toEqual([[SECRET_TEXT, 1], [`${SECRET_TEXT} 2`, 2]]);
    } finally {
      await close();
    }
  });

  test('presence with keys: the member hash and the change messages hold tokens, not names; members see the names', async () => {
    const a = make(new RedisPubSubChannelLayer({ url: server.url, symmetricEncryptionKeys: [KEY], presenceInterval: 20 }));
    const b = make(new RedisPubSubChannelLayer({ url: server.url, symmetricEncryptionKeys: [KEY], presenceInterval: 20 }));
    const { raw, published, close } = await rawReader(server.url, 'asgi__presence_events__*');
    try {
      await a.presenceJoin('sealed_room', await a.newChannel(), { id: 'a-1', name: 'Agent Smith' });
      const snapshot = await b.presenceJoin('sealed_room', await b.newChannel(), { id: 'b-1', name: 'Neo' });
      expect(snapshot.map((member) => member.name).sort()).toEqual(['Agent Smith', 'Neo']);
      const hash = await raw.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).hGetAll('asgi__presence__{sealed_room}');
      expect(Object.keys(hash).sort()).toEqual(['a-1', 'b-1']);
      for (const value of Object.values(hash)) {
        expect((value as Buffer).includes('Agent')).toBe(false);
        expect((value as Buffer).includes('Neo')).toBe(false);
      }
      await until(() => published.length === 2, 5_000, 'the two join messages');
      for (const payload of published) expect(payload.includes('Agent') || payload.includes('Neo')).toBe(false);
    } finally {
      await close();
    }
  });

  test('createPublisher with symmetricEncryptionKeys reaches encrypted pub/sub and list layers; a layer without the key refuses it', async () => {
    const pubsub = make(new RedisPubSubChannelLayer({ url: server.url, symmetricEncryptionKeys: [KEY] }));
    const keyless = make(new RedisPubSubChannelLayer({ url: server.url }));
    const list = make(new RedisChannelLayer({ url: server.url, symmetricEncryptionKeys: [KEY] }));
    const [a, b, c] = [await pubsub.newChannel(), await keyless.newChannel(), await list.newChannel()];
    await pubsub.groupAdd('news', a);
    await keyless.groupAdd('news', b);
    await list.groupAdd('news', c);

    const publisher = await createPublisher({ urls: [server.url], symmetricEncryptionKeys: [KEY] });
    const listPublisher = await createPublisher({ urls: [server.url], layer: 'list', symmetricEncryptionKeys: [KEY] });
    try {
      await publisher.groupSend('news', { type: 'news', message: SECRET_TEXT });
      await listPublisher.groupSend('news', { type: 'news', message: 'queued' });
    } finally {
      await publisher.close();
      await listPublisher.close();
    }
    expect(await pubsub.receive(a)).toEqual({ type: 'news', message: SECRET_TEXT });
    expect(await list.receive(c)).toEqual({ type: 'news', message: 'queued' });
    await until(() => (keyless as RedisPubSubChannelLayer).refusedMessages === 1, 5000, 'the keyless layer to refuse the token');
  });

  test('channelkit publish and channelLayerFromEnv take CHANNEL_LAYER_KEYS, and log the count of keys, not the keys', async () => {
    const log = memoryLogger();
    const env = { ...NO_REDIS, REDIS_URL: server.url, CHANNEL_LAYER_KEYS: `${KEY},old key` };
    const layer = make(await channelLayerFromEnv(env, log.logger));
    const channel = await layer.newChannel();
    await layer.groupAdd('notifications', channel);
    expect(log.text()).toContain('"keys":2');
    expect(log.text()).not.toContain(KEY);

    const payload = await nextPublished(server.url, 'asgi__group__notifications', async () => {
      const sent = await runCli(['publish', '--group', 'notifications', JSON.stringify({ type: 'notification.message', title: SECRET_TEXT })], env);
      expect(sent.code).toBe(0);
    });
    expectToken(payload);
    expect(await layer.receive(channel)).toEqual({ type: 'notification.message', title: SECRET_TEXT });
  }, 30_000);
});

describeRedis('encrypted Redis Cluster sharded pub/sub layer', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  });
  afterAll(async () => {
    await cluster.close();
  });

  test('group sends and sends to another process are tokens on the shard channels, opened by the other process', async () => {
    const [a, b] = [
      new RedisShardedPubSubChannelLayer({ urls: cluster.urls, symmetricEncryptionKeys: [KEY] }),
      new RedisShardedPubSubChannelLayer({ urls: cluster.urls, symmetricEncryptionKeys: ['old', KEY] }),
    ];
    const raw = createCluster({ rootNodes: cluster.urls.map((url) => ({ url })) });
    raw.on('error', () => {});
    await raw.connect();
    try {
      const remote = await b.newChannel();
      await b.groupAdd('G', remote);
      const seen: Buffer[] = [];
      await raw.sSubscribe('asgi__group__G', (message: Buffer) => void seen.push(message), true);
      await raw.sSubscribe(`asgi__process__${b.processId}`, (message: Buffer) => void seen.push(message), true);
      await a.groupSend('G', { type: 'chat.message', message: SECRET_TEXT });
      expect(await b.receive(remote)).toEqual({ type: 'chat.message', message: SECRET_TEXT });
      await a.send(remote, { type: 'direct', message: SECRET_TEXT });
      expect(await b.receive(remote)).toEqual({ type: 'direct', message: SECRET_TEXT });
      await until(() => seen.length === 2, 5000, 'both payloads seen raw');
      for (const payload of seen) expectToken(payload);
    } finally {
      await raw.close();
      await Promise.all([a.close(), b.close()]);
    }
  });
});
