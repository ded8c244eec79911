// Proves the Redis layers speak channels_redis 4's wire format: real Django Channels processes and
// channelkit share groups and channels on one Redis (and on two, sharded), both ways.
import { type ChannelLayer, type LayerMessage, nonLocalName } from '../../src/layers/layer';
import { RedisChannelLayer } from '../../src/layers/redis/list';
import { RedisPubSubChannelLayer } from '../../src/layers/redis/pubsub';
import { consistentHash } from '../../src/layers/redis/consistent-hash';
import { describeRedis, RedisServer } from '../support/redis';
import { type DjangoBackend, DjangoProcess, djangoUnavailable } from './django-process';

const unavailable = djangoUnavailable();
if (unavailable) {
  const notice = `${unavailable}: the Django Channels interop tests are SKIPPED (apt-get install python3-channels-redis)`;
  if (process.env.CI === 'true') throw new Error(`${notice}; under CI=true this is a failure`);
  process.stderr.write(`\n${'!'.repeat(100)}\n!!! ${notice}\n${'!'.repeat(100)}\n\n`);
}
const describeDjango = unavailable ? describe.skip : describeRedis;

const CHAT: LayerMessage = { type: 'chat.message', message: 'hi' };

interface Flavour {
  /** channels_redis's layer, as django_layer.py names it. */
  backend: DjangoBackend;
  create(urls: string[]): ChannelLayer;
  /** Only the list layer queues messages on named channels (the pub/sub layer stores nothing). */
  namedChannels: boolean;
}

const LIST: Flavour = {
  backend: 'core',
  create: (urls) => new RedisChannelLayer({ urls }),
  namedChannels: true,
};
const PUBSUB: Flavour = {
  backend: 'pubsub',
  create: (urls) => new RedisPubSubChannelLayer({ urls }),
  namedChannels: false,
};

function describeInterop(title: string, flavour: Flavour, hostCount: number): void {
  describeDjango(title, () => {
    let servers: RedisServer[] = [];
    let urls: string[] = [];
    let layer: ChannelLayer;
    const processes: DjangoProcess[] = [];
    const django = (...args: string[]) => {
      const process = new DjangoProcess(flavour.backend, urls, args);
      processes.push(process);
      return process;
    };

    beforeAll(async () => {
      servers = await Promise.all(Array.from({ length: hostCount }, () => RedisServer.start()));
      urls = servers.map((server) => server.url);
    });
    afterAll(async () => {
      await Promise.all(servers.map((server) => server.close()));
    });
    beforeEach(() => {
      layer = flavour.create(urls);
    });
    afterEach(async () => {
      for (const process of processes.splice(0)) process.kill();
      await layer.close();
    });

    test('a Django group_send reaches a channelkit group member', async () => {
      const channel = await layer.newChannel();
      await layer.groupAdd('chat_lobby', channel);
      const received = layer.receive(channel);
      await django('group_send', 'chat_lobby', JSON.stringify(CHAT)).succeeded();
      expect(await received).toEqual(CHAT);
    });

    test('a channelkit groupSend reaches a Django group member', async () => {
      const member = django('join', 'chat_lobby');
      await member.ready();
      await layer.groupSend('chat_lobby', CHAT);
      expect(await member.message()).toEqual(CHAT);
      await member.succeeded();
    });

    test('one groupSend reaches Django and channelkit members of the group alike', async () => {
      const member = django('join', 'chat_mixed');
      await member.ready();
      const [mine, alsoMine] = [await layer.newChannel(), await layer.newChannel()];
      await layer.groupAdd('chat_mixed', mine);
      await layer.groupAdd('chat_mixed', alsoMine);
      const message = { type: 'chat.message', message: 'héllo ✓', n: 3, nested: { ok: true, list: [1, 2.5] } };
      await layer.groupSend('chat_mixed', message);
      expect(await member.message()).toEqual(message);
      expect(await layer.receive(mine)).toEqual(message);
      expect(await layer.receive(alsoMine)).toEqual(message);
    });

    test('a Django send reaches a channelkit channel from newChannel', async () => {
      const channel = await layer.newChannel();
      const received = layer.receive(channel);
      await django('send', channel, JSON.stringify({ type: 'direct.message', text: 'from django' })).succeeded();
      expect(await received).toEqual({ type: 'direct.message', text: 'from django' });
    });

    test("a channelkit send reaches a Django process's own channel", async () => {
      const owner = django('own', '3');
      const channel = await owner.ready();
      for (let n = 0; n < 3; n++) await layer.send(channel, { type: 'direct.message', n });
      for (let n = 0; n < 3; n++) expect(await owner.message()).toEqual({ type: 'direct.message', n });
      await owner.succeeded();
    });

    if (flavour.backend === 'pubsub') {
      test('a history group: Django members decode recorded messages as dicts with epoch and offset; a Django group_send is delivered, unrecorded', async () => {
        await layer.setHistory('chat_history*', { size: 10, ttl: 60 });
        const member = django('join', 'chat_history');
        await member.ready();
        await layer.groupSend('chat_history', CHAT);
        const got = (await member.message()) as LayerMessage;
        expect(got).toEqual({ ...CHAT, epoch: expect.any(String), offset: expect.any(Number) });
        await member.succeeded();

        const channel = await layer.newChannel();
        const { position } = await layer.groupJoin('chat_history', channel, { last: 0 });
        expect(position).toEqual({ epoch: got.epoch, offset: got.offset });
        const received = layer.receive(channel);
        await django('group_send', 'chat_history', JSON.stringify(CHAT)).succeeded();
        expect(await received).toEqual(CHAT);
        const after = await layer.groupJoin('chat_history', await layer.newChannel(), { last: 10 });
        expect(after.messages.map((m) => m.offset)).toEqual([got.offset]);
      });
    }

    if (flavour.namedChannels) {
      test('a Django send to a named (worker) channel reaches a channelkit receive', async () => {
        await django('send', 'thumbnails.done', JSON.stringify({ type: 'thumbnail.done', id: 7 })).succeeded();
        expect(await layer.receive('thumbnails.done')).toEqual({ type: 'thumbnail.done', id: 7 });
      });

      // channels_redis 4.0's receive_single() picks one host per receive() call (round-robin) and
      // then loops BZPOPMIN on that host only, so with several hosts a Django worker misses messages
      // queued on the others, whoever sends them (Django's own send round-robins). One host only.
      (hostCount === 1 ? test : test.skip)('a channelkit send to a named (worker) channel reaches a Django receive', async () => {
        const worker = django('receive', 'thumbnails.generate');
        await worker.ready();
        await layer.send('thumbnails.generate', { type: 'thumbnail.generate', id: 7 });
        expect(await worker.message()).toEqual({ type: 'thumbnail.generate', id: 7 });
        await worker.succeeded();
      });
    }

    if (flavour.backend === 'core' && hostCount > 1) {
      test("a Django send lands on the host of the full channel name and still reaches channelkit", async () => {
        // channels_redis 4.0's send() hashes the whole name ("specific.<client>!<id>") while its
        // receive and group_send hash the part before '!': pick a channel where the two differ.
        let channel = await layer.newChannel();
        while (consistentHash(channel, hostCount) === consistentHash(nonLocalName(channel), hostCount)) {
          channel = await layer.newChannel();
        }
        const received = layer.receive(channel);
        await django('send', channel, JSON.stringify({ type: 'direct.message', text: 'other host' })).succeeded();
        expect(await received).toEqual({ type: 'direct.message', text: 'other host' });
      });
    }
  });
}

describeInterop('Django interop: list layer (channels_redis.core) on one Redis', LIST, 1);
describeInterop('Django interop: list layer (channels_redis.core) sharded over two Redis hosts', LIST, 2);
describeInterop('Django interop: pub/sub layer (channels_redis.pubsub) on one Redis', PUBSUB, 1);
describeInterop('Django interop: pub/sub layer (channels_redis.pubsub) sharded over two Redis hosts', PUBSUB, 2);
