// The one conformance suite every channel layer backend must pass (Channels' semantics, then ours).
import {
  ChannelFull,
  type ChannelLayer,
  InvalidChannelName,
  InvalidMessage,
  type LayerMessage,
  type LayerOptions,
} from '../../src/layers/layer';
import { poll } from '../support/wait';
import { type RedisControl, describeHistoryConformance } from './history-conformance';

export interface LayerFactory {
  /** A new layer on the backend; every call on one backend must see the same shared state. */
  create(options?: LayerOptions): Promise<ChannelLayer>;
  /** True when two layers from `create` are two processes' views of one backend (Redis). */
  shared: boolean;
  /** Supports `expiry` below one second? (Redis TTLs are whole seconds.) */
  subSecondExpiry?: boolean;
  /**
   * False for pub/sub layers: a send to a named channel that no process reads yet is dropped, since
   * PUBLISH stores nothing (channels_redis's pub/sub layer does the same). The queue tests then use a
   * `newChannel()` name, which its process reads from the moment it exists. Default true.
   */
  storesUnreadMessages?: boolean;
  /**
   * True when a send to a channel of the sending process skips the backend (pub/sub layers deliver
   * it in-process), so the sender sees ChannelFull even on a shared backend.
   */
  ownChannelsLocal?: boolean;
  /** The backend's Redis, for the history cases that flush, restart or watch it (absent in memory). */
  redis?: RedisControl;
}

function timeout(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function describeLayerConformance(name: string, factory: LayerFactory): void {
  describe(`${name} conformance`, () => {
    const open: ChannelLayer[] = [];
    async function make(options?: LayerOptions): Promise<ChannelLayer> {
      const layer = await factory.create(options);
      open.push(layer);
      return layer;
    }
    /** `name`, or a `newChannel()` name where unread named channels keep nothing (pub/sub). */
    async function queueChannel(layer: ChannelLayer, name: string): Promise<string> {
      return factory.storesUnreadMessages === false ? layer.newChannel() : name;
    }
    afterEach(async () => {
      if (open.length > 0) await open[0].flush();
      await Promise.all(open.splice(0).map((layer) => layer.close()));
    });

    test('send then receive returns the message', async () => {
      const layer = await make();
      const channel = await queueChannel(layer, 'test-channel-1');
      await layer.send(channel, { type: 'test.message', text: 'Ahoy-hoy!' });
      expect(await layer.receive(channel)).toEqual({ type: 'test.message', text: 'Ahoy-hoy!' });
    });

    test('receive waits for a message sent later', async () => {
      const layer = await make();
      const received = layer.receive('test-channel-wait');
      await sleep(20); // "later": receive() is already waiting when the send happens
      await layer.send('test-channel-wait', { type: 'late' });
      if (factory.storesUnreadMessages === false) {
        // Pub/sub: a named channel hears only what is published once its subscription is live, and
        // receive() cannot say when that is; resend until it is (at most once is the contract).
        await poll(
          async () => {
            if ((await Promise.race([received, timeout(100)])) !== 'timeout') return true;
            await layer.send('test-channel-wait', { type: 'late' });
            return false;
          },
          5000,
          0,
        );
      }
      expect(await received).toEqual({ type: 'late' });
    });

    test('messages keep their order per channel', async () => {
      const layer = await make();
      const channel = await queueChannel(layer, 'test-order');
      for (let i = 0; i < 20; i++) await layer.send(channel, { type: 'n', i });
      const seen: unknown[] = [];
      for (let i = 0; i < 20; i++) seen.push((await layer.receive(channel)).i);
      expect(seen).toEqual([...Array(20).keys()]);
    });

    test('values survive the trip: nested objects, unicode, numbers, booleans, null, bytes', async () => {
      const layer = await make();
      const channel = await queueChannel(layer, 'test-values');
      const message = {
        type: 'x.y',
        nested: { list: [1, 2.5, -3], ok: true, none: null },
        text: 'héllo ✓ 你好',
        bytes: new Uint8Array([0, 1, 255]),
      };
      await layer.send(channel, message);
      const got = await layer.receive(channel);
      expect({ ...got, bytes: Array.from(got.bytes as Uint8Array) }).toEqual({ ...message, bytes: [0, 1, 255] });
    });

    test('a receiver does not see later mutations of the sent object', async () => {
      const layer = await make();
      const channel = await queueChannel(layer, 'test-copy');
      const message = { type: 'm', list: [1] };
      await layer.send(channel, message);
      message.list.push(2);
      expect((await layer.receive(channel)).list).toEqual([1]);
    });

    test('send to a full channel throws ChannelFull', async () => {
      const layer = await make({ capacity: 3 });
      const channel = await queueChannel(layer, 'test-full');
      for (let i = 0; i < 3; i++) await layer.send(channel, { type: 'f', i });
      await expect(layer.send(channel, { type: 'f', i: 3 })).rejects.toBeInstanceOf(ChannelFull);
      await expect(layer.send(channel, { type: 'f' })).rejects.toMatchObject({ code: 'CHANNEL_FULL' });
      // Draining makes room again.
      expect((await layer.receive(channel)).i).toBe(0);
      await layer.send(channel, { type: 'f', i: 4 });
    });

    /** A queue channel whose name starts with `prefix.` (a `newChannel(prefix)` name where unread named channels keep nothing). */
    async function prefixedChannel(layer: ChannelLayer, prefix: string): Promise<string> {
      return factory.storesUnreadMessages === false ? layer.newChannel(prefix) : `${prefix}.queue`;
    }
    /** Sends until the channel is full; the number it took. */
    async function fill(layer: ChannelLayer, channel: string, most: number): Promise<number> {
      for (let i = 0; i < most; i++) {
        try {
          await layer.send(channel, { type: 'f', i });
        } catch (error) {
          if (error instanceof ChannelFull) return i;
          throw error;
        }
      }
      return most;
    }
    test('channelCapacity: a channel matching a glob has its own capacity, others keep `capacity`', async () => {
      const layer = await make({ capacity: 100, channelCapacity: { 'small.*': 2 } });
      expect(await fill(layer, await prefixedChannel(layer, 'small'), 10)).toBe(2);
      expect(await fill(layer, await prefixedChannel(layer, 'large'), 10)).toBe(10);
    });

    test('channelCapacity: RegExp rules apply too', async () => {
      const layer = await make({ capacity: 100, channelCapacity: [[/^tiny\./, 1]] });
      expect(await fill(layer, await prefixedChannel(layer, 'tiny'), 10)).toBe(1);
      expect(await fill(layer, await prefixedChannel(layer, 'tinyish'), 10)).toBe(10);
    });

    test('channelCapacity: the first matching rule wins', async () => {
      const layer = await make({ capacity: 100, channelCapacity: [['small.*', 2], [/^small/, 5], ['*', 3]] });
      expect(await fill(layer, await prefixedChannel(layer, 'small'), 10)).toBe(2);
      expect(await fill(layer, await prefixedChannel(layer, 'smaller'), 10)).toBe(5);
      expect(await fill(layer, await prefixedChannel(layer, 'other'), 10)).toBe(3);
    });

    test('messages expire after `expiry`', async () => {
      const expiry = factory.subSecondExpiry === false ? 1 : 0.1;
      const layer = await make({ expiry });
      const channel = await queueChannel(layer, 'test-expiry');
      await layer.send(channel, { type: 'old' });
      await sleep(expiry * 1000 + 300); // past expiry: the elapsed time is the condition under test
      await layer.send(channel, { type: 'new' });
      expect(await layer.receive(channel)).toEqual({ type: 'new' });
    });

    test('invalid names throw InvalidChannelName with a clear message', async () => {
      const layer = await make();
      const bad = ['', 'with space', 'ünicode', 'a'.repeat(100), 'semi;colon'];
      for (const channel of bad) {
        await expect(layer.send(channel, { type: 't' })).rejects.toBeInstanceOf(InvalidChannelName);
        await expect(layer.groupAdd('ok', channel)).rejects.toBeInstanceOf(InvalidChannelName);
      }
      for (const group of [...bad, 'has!bang']) {
        await expect(layer.groupSend(group, { type: 't' })).rejects.toThrow(/invalid group name/);
      }
      await expect(layer.send('a'.repeat(99), { type: 't' })).resolves.toBeUndefined();
    });

    test('a message that is not a plain object is refused with InvalidMessage', async () => {
      const layer = await make();
      for (const bad of [[], null, 'text', 42, Buffer.from('x')]) {
        await expect(layer.send('test-invalid', bad as unknown as LayerMessage)).rejects.toBeInstanceOf(InvalidMessage);
        await expect(layer.groupSend('g', bad as unknown as LayerMessage)).rejects.toBeInstanceOf(InvalidMessage);
      }
    });

    test('any map is a layer message: no type needed to send, group-send and receive', async () => {
      const layer = await make();
      const channel = await layer.newChannel();
      await layer.send(channel, { a: true });
      expect(await layer.receive(channel)).toEqual({ a: true });
      await layer.groupAdd('typeless', channel);
      await layer.groupSend('typeless', { a: 1, nested: { b: [2] } });
      expect(await layer.receive(channel)).toEqual({ a: 1, nested: { b: [2] } });
    });

    test('newChannel returns distinct valid names that can receive', async () => {
      const layer = await make();
      const a = await layer.newChannel();
      const b = await layer.newChannel();
      expect(a).not.toBe(b);
      expect(a.length).toBeLessThan(100);
      await layer.send(a, { type: 'to.a' });
      expect(await layer.receive(a)).toEqual({ type: 'to.a' });
    });

    test('groupSend reaches every member, once, and not after groupDiscard', async () => {
      const layer = await make();
      const [a, b, c] = [await layer.newChannel(), await layer.newChannel(), await layer.newChannel()];
      await layer.groupAdd('room', a);
      await layer.groupAdd('room', b);
      await layer.groupAdd('room', b); // adding twice is one membership
      await layer.groupAdd('other', c);
      await layer.groupSend('room', { type: 'hello', n: 1 });
      expect(await layer.receive(a)).toEqual({ type: 'hello', n: 1 });
      expect(await layer.receive(b)).toEqual({ type: 'hello', n: 1 });
      await layer.groupDiscard('room', b);
      await layer.groupDiscard('room', c); // not a member: no error
      await layer.groupSend('room', { type: 'hello', n: 2 });
      expect(await layer.receive(a)).toEqual({ type: 'hello', n: 2 });
      expect(await Promise.race([layer.receive(b), timeout(150)])).toBe('timeout');
      expect(await Promise.race([layer.receive(c), timeout(50)])).toBe('timeout');
    });

    test('groupSend to a group with no members is a no-op', async () => {
      const layer = await make();
      await expect(layer.groupSend('nobody-here', { type: 't' })).resolves.toBeUndefined();
    });

    test('groupSend skips a full member and still reaches the others', async () => {
      const layer = await make({ capacity: 1 });
      const [full, ok] = [await layer.newChannel(), await layer.newChannel()];
      await layer.groupAdd('cap', full);
      await layer.groupAdd('cap', ok);
      await layer.send(full, { type: 'filler' });
      await expect(layer.groupSend('cap', { type: 'g' })).resolves.toBeUndefined();
      expect(await layer.receive(ok)).toEqual({ type: 'g' });
      expect(await layer.receive(full)).toEqual({ type: 'filler' });
      // The sender was not told, so the skip is counted.
      expect(layer.skippedFull).toBe(1);
    });

    test('group membership expires after groupExpiry', async () => {
      const layer = await make({ groupExpiry: 1 });
      const channel = await layer.newChannel();
      await layer.groupAdd('short', channel);
      await sleep(1300); // past groupExpiry: the elapsed time is the condition under test
      await layer.groupSend('short', { type: 'late' });
      expect(await Promise.race([layer.receive(channel), timeout(200)])).toBe('timeout');
    });

    test('listen pushes messages in order, including those queued before it', async () => {
      const layer = await make();
      const channel = await layer.newChannel();
      await layer.send(channel, { type: 'early' });
      const seen: string[] = [];
      let gotAll!: () => void;
      const done = new Promise<void>((resolve) => (gotAll = resolve));
      await layer.listen(channel, {
        offer(message) {
          seen.push(String(message.type));
          if (seen.length === 3) gotAll();
          return true;
        },
      });
      await layer.send(channel, { type: 'direct' });
      await layer.groupAdd('listeners', channel);
      await layer.groupSend('listeners', { type: 'group' });
      await done;
      expect(seen).toEqual(['early', 'direct', 'group']);
      layer.unlisten(channel);
    });

    test('after unlisten, messages queue for receive again', async () => {
      const layer = await make();
      const channel = await layer.newChannel();
      const heard: string[] = [];
      await layer.listen(channel, { offer: (message) => heard.push(String(message.type)) > 0 });
      layer.unlisten(channel);
      await layer.send(channel, { type: 'queued' });
      expect(await layer.receive(channel)).toEqual({ type: 'queued' });
      expect(heard).toEqual([]);
    });

    test('a listener that refuses makes send throw ChannelFull', async () => {
      const layer = await make();
      const channel = await layer.newChannel();
      await layer.listen(channel, { offer: () => false });
      if (factory.shared && !factory.ownChannelsLocal) {
        // Across processes a refusal cannot reach the sender; it must at least not crash or block.
        await layer.send(channel, { type: 'refused' });
      } else {
        await expect(layer.send(channel, { type: 'refused' })).rejects.toBeInstanceOf(ChannelFull);
      }
      layer.unlisten(channel);
    });

    test('flush drops queued messages and groups', async () => {
      const layer = await make();
      const channel = await layer.newChannel();
      await layer.send(channel, { type: 'gone' });
      await layer.groupAdd('flushed', channel);
      await layer.flush();
      await layer.groupSend('flushed', { type: 'after' });
      await layer.send(channel, { type: 'kept' });
      expect(await layer.receive(channel)).toEqual({ type: 'kept' });
    });

    test('close rejects pending receives and later sends', async () => {
      const layer = await factory.create();
      const pending = layer.receive(await layer.newChannel());
      await layer.close();
      await expect(pending).rejects.toMatchObject({ code: 'LAYER_CLOSED' });
      await expect(layer.send('after-close', { type: 't' })).rejects.toMatchObject({ code: 'LAYER_CLOSED' });
    });

    describeHistoryConformance(factory);

    if (factory.shared) {
      describe('across processes', () => {
        test('a channel of one process receives what another sends', async () => {
          const [a, b] = [await make(), await make()];
          const channel = await a.newChannel();
          const received = a.receive(channel);
          await b.send(channel, { type: 'cross', n: 1 });
          expect(await received).toEqual({ type: 'cross', n: 1 });
        });

        test('groupSend from one process reaches members in both', async () => {
          const [a, b] = [await make(), await make()];
          const [ca, cb] = [await a.newChannel(), await b.newChannel()];
          await a.groupAdd('both', ca);
          await b.groupAdd('both', cb);
          await a.groupSend('both', { type: 'x', n: 7 });
          expect(await a.receive(ca)).toEqual({ type: 'x', n: 7 });
          expect(await b.receive(cb)).toEqual({ type: 'x', n: 7 });
        });

        test('a listened channel receives sends from another process in order', async () => {
          const [a, b] = [await make(), await make()];
          const channel = await a.newChannel();
          const seen: number[] = [];
          let gotAll!: () => void;
          const done = new Promise<void>((resolve) => (gotAll = resolve));
          await a.listen(channel, {
            offer(message) {
              seen.push(message.n as number);
              if (seen.length === 50) gotAll();
              return true;
            },
          });
          for (let n = 0; n < 50; n++) await b.send(channel, { type: 'seq', n });
          await done;
          expect(seen).toEqual([...Array(50).keys()]);
          a.unlisten(channel);
        });
      });
    }

    test('a full channel from newChannel() refuses the 4th and 5th send with ChannelFull, drops nothing, and takes sends again once drained', async () => {
      const layer = await make({ capacity: 3 });
      const channel = await layer.newChannel();
      for (const n of [1, 2, 3]) await layer.send(channel, { type: 'n', n });
      await expect(layer.send(channel, { type: 'n', n: 4 })).rejects.toBeInstanceOf(ChannelFull);
      await expect(layer.send(channel, { type: 'n', n: 5 })).rejects.toBeInstanceOf(ChannelFull);
      const got: unknown[] = [];
      for (let i = 0; i < 3; i++) got.push((await layer.receive(channel)).n);
      expect(got).toEqual([1, 2, 3]);
      // Nothing of 4 and 5 was queued: the next message is the next one sent.
      await layer.send(channel, { type: 'n', n: 6 });
      await layer.send(channel, { type: 'n', n: 7 });
      expect((await layer.receive(channel)).n).toBe(6);
      expect((await layer.receive(channel)).n).toBe(7);

      // A group send skips the full member and still reaches the other one.
      const [full, other] = [await layer.newChannel(), await layer.newChannel()];
      await layer.groupAdd('capacity-3', full);
      await layer.groupAdd('capacity-3', other);
      for (const n of [1, 2, 3]) await layer.send(full, { type: 'n', n });
      await expect(layer.groupSend('capacity-3', { type: 'g' })).resolves.toBeUndefined();
      expect(await layer.receive(other)).toEqual({ type: 'g' });
      for (const n of [1, 2, 3]) expect((await layer.receive(full)).n).toBe(n);
      await layer.send(full, { type: 'n', n: 4 });
      expect(await layer.receive(full)).toEqual({ type: 'n', n: 4 });
    });
  });
}
