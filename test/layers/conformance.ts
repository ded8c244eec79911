// The one conformance suite every channel layer backend must pass (Channels' semantics, then ours).
import {
  ChannelFull,
  type ChannelLayer,
  InvalidChannelName,
  InvalidMessage,
  type LayerMessage,
  type LayerOptions,
} from '../../src/layers/layer';
import type { PresenceDiff, PresenceMember } from '../../src/layers/presence';
import { poll, until } from '../support/wait';
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
  /**
   * False when every groupJoin reads the history where it is kept (the workers layer asks its primary,
   * over IPC) instead of a per-process cache that one read fills (Redis). Default true.
   */
  cachesHistory?: boolean;
}

function timeout(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The presence diffs one channel receives (a listener, as a consumer's mailbox is). */
class DiffLog {
  readonly diffs: PresenceDiff[] = [];
  offer(message: LayerMessage): boolean {
    if (message.type === 'presence.diff') this.diffs.push(message as unknown as PresenceDiff);
    return true;
  }
  /** Ids of every join (or leave) received, but `except`. */
  ids(kind: 'joins' | 'leaves', except?: string): Set<string> {
    const ids = new Set<string>();
    for (const diff of this.diffs) for (const member of diff[kind]) if (member.id !== except) ids.add(member.id);
    return ids;
  }
  /** The members a client that got `snapshot` then these diffs holds: each diff's joins, then its leaves. */
  view(snapshot: PresenceMember[]): string[] {
    const members = new Set(snapshot.map((member) => member.id));
    for (const diff of this.diffs) {
      for (const member of diff.joins) members.add(member.id);
      for (const member of diff.leaves) members.delete(member.id);
    }
    return [...members].sort();
  }
  /** Every member object received in `kind`, by id. */
  members(kind: 'joins' | 'leaves'): Map<string, PresenceMember> {
    const members = new Map<string, PresenceMember>();
    for (const diff of this.diffs) for (const member of diff[kind]) members.set(member.id, member);
    return members;
  }
}

const byId = (a: PresenceMember, b: PresenceMember) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
let presenceGroups = 0;
/** A group name no earlier test (nor an earlier run on the same Redis) used. */
const freshGroup = () => `presence-${process.pid}-${Date.now().toString(36)}-${++presenceGroups}`;

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

    test('a group member keeps its group while its listener goes and comes back', async () => {
      const layer = await make();
      const channel = await layer.newChannel();
      const first: string[] = [];
      const second: string[] = [];
      await layer.listen(channel, { offer: (message) => first.push(String(message.type)) > 0 });
      await layer.groupAdd('relisten', channel);
      await layer.groupSend('relisten', { type: 'one' });
      await poll(() => first.length === 1, 2000);
      layer.unlisten(channel);
      // Between listeners, the group's message waits in the channel's queue, then goes to the next one.
      await layer.groupSend('relisten', { type: 'two' });
      await layer.listen(channel, { offer: (message) => second.push(String(message.type)) > 0 });
      await layer.groupSend('relisten', { type: 'three' });
      await poll(() => second.length === 2, 2000);
      expect(first).toEqual(['one']);
      expect(second).toEqual(['two', 'three']);
      layer.unlisten(channel);
    });

    test('a member that left, or whose group was flushed, can join again and hears the group', async () => {
      const layer = await make();
      const channel = await layer.newChannel();
      const heard: string[] = [];
      await layer.listen(channel, { offer: (message) => heard.push(String(message.type)) > 0 });
      await layer.groupAdd('again', channel);
      await layer.groupDiscard('again', channel);
      layer.unlisten(channel);
      await layer.listen(channel, { offer: (message) => heard.push(String(message.type)) > 0 });
      await layer.groupAdd('again', channel);
      await layer.groupSend('again', { type: 'rejoined' });
      await poll(() => heard.length === 1, 2000);
      await layer.flush();
      await layer.groupAdd('again', channel);
      await layer.groupSend('again', { type: 'after flush' });
      await poll(() => heard.length === 2, 2000);
      expect(heard).toEqual(['rejoined', 'after flush']);
      layer.unlisten(channel);
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

    describe('presence', () => {
      /** A layer with presence, or null for a backend that declares it has none (its refusal is tested below). */
      async function presenceLayer(options: LayerOptions = {}): Promise<ChannelLayer | null> {
        const layer = await make({ presenceInterval: 50, ...options });
        return layer.supportsPresence ? layer : null;
      }
      /** A member on its own channel of `layer`, with the diffs that channel receives. */
      async function join(layer: ChannelLayer, group: string, member: PresenceMember) {
        const channel = await layer.newChannel();
        const log = new DiffLog();
        await layer.listen(channel, log);
        const snapshot = await layer.presenceJoin(group, channel, member);
        return { channel, log, snapshot };
      }

      test('a layer without presence refuses it with a ChannelLayerError coded UNSUPPORTED', async () => {
        const layer = await make();
        if (layer.supportsPresence) return;
        const channel = await layer.newChannel();
        await expect(layer.presenceJoin('g', channel, { id: 'a' })).rejects.toMatchObject({ code: 'UNSUPPORTED' });
        await expect(layer.presence('g')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
        await expect(layer.presenceCount('g')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
      });

      test('the snapshot holds the joining member and those before it, with names; presence and presenceCount agree', async () => {
        const layer = await presenceLayer();
        if (!layer) return;
        const group = freshGroup();
        expect(await layer.presence(group)).toEqual([]);
        expect(await layer.presenceCount(group)).toBe(0);
        const alice = await join(layer, group, { id: 'alice-1', name: 'Alice' });
        expect(alice.snapshot).toEqual([{ id: 'alice-1', name: 'Alice' }]);
        const bob = await join(layer, group, { id: 'bob-1' });
        expect(bob.snapshot.sort(byId)).toEqual([{ id: 'alice-1', name: 'Alice' }, { id: 'bob-1' }]);
        expect((await layer.presence(group)).sort(byId)).toEqual([{ id: 'alice-1', name: 'Alice' }, { id: 'bob-1' }]);
        expect(await layer.presenceCount(group)).toBe(2);
        await layer.presenceLeave(group, bob.channel);
        await layer.presenceLeave(group, bob.channel); // leaving twice is not an error
        expect(await layer.presence(group)).toEqual([{ id: 'alice-1', name: 'Alice' }]);
        expect(await layer.presenceCount(group)).toBe(1);
        await expect(layer.presenceJoin(group, alice.channel, { id: '' })).rejects.toMatchObject({ code: 'INVALID_PRESENCE_MEMBER' });
        await expect(layer.presenceJoin('bad group', alice.channel, { id: 'x' })).rejects.toBeInstanceOf(InvalidChannelName);
      });

      test('members see others join and leave as presence.diff messages, with their names, never their own join', async () => {
        const layer = await presenceLayer();
        if (!layer) return;
        // On a shared backend the other member is in another process.
        const other = factory.shared ? ((await presenceLayer())!) : layer;
        const group = freshGroup();
        const alice = await join(layer, group, { id: 'alice', name: 'Alice' });
        const bob = await join(other, group, { id: 'bob', name: 'Bob' });
        await until(() => alice.log.ids('joins').has('bob'), 5000, 'bob in a join diff');
        expect(alice.log.members('joins').get('bob')).toEqual({ id: 'bob', name: 'Bob' });
        expect(alice.log.diffs[0]).toMatchObject({ type: 'presence.diff', group });
        await other.presenceLeave(group, bob.channel);
        await until(() => alice.log.ids('leaves').has('bob'), 5000, 'bob in a leave diff');
        expect(alice.log.members('leaves').get('bob')).toEqual({ id: 'bob', name: 'Bob' });
        // And the other way round.
        const carol = await join(other, group, { id: 'carol' });
        expect(carol.snapshot.sort(byId)).toEqual([{ id: 'alice', name: 'Alice' }, { id: 'carol' }]);
        await layer.presenceLeave(group, alice.channel);
        await until(() => carol.log.ids('leaves').has('alice'), 5000, 'alice in a leave diff');
        // A member that left gets no more diffs.
        const seen = alice.log.diffs.length;
        await join(other, group, { id: 'dave' });
        await until(() => carol.log.ids('joins').has('dave'), 5000, 'dave in a join diff');
        expect(alice.log.diffs.length).toBe(seen);
        expect(carol.log.view(carol.snapshot)).toEqual(['carol', 'dave']);
        // A member's own join is never echoed to it: its snapshot has it.
        for (const [log, id] of [[alice.log, 'alice'], [bob.log, 'bob'], [carol.log, 'carol']] as const) expect(log.ids('joins').has(id)).toBe(false);
      });

      test('500 simultaneous joins reach a member as at most one diff per interval, whose joins are exactly the 500', async () => {
        const interval = 250;
        const layer = await presenceLayer({ presenceInterval: interval });
        if (!layer) return;
        const other = factory.shared ? ((await presenceLayer({ presenceInterval: interval }))!) : layer;
        const group = freshGroup();
        const observer = await join(layer, group, { id: 'observer' });
        const ids = Array.from({ length: 500 }, (_, i) => `m${i}`);
        const channels = await Promise.all(ids.map(() => other.newChannel()));
        const started = Date.now();
        await Promise.all(ids.map((id, i) => other.presenceJoin(group, channels[i], { id, name: `N${i}` })));
        await until(() => observer.log.ids('joins').size === 500, 10_000, '500 joins');
        const elapsed = Date.now() - started;
        // The contract is one diff per interval at most: a slow machine spreads the joins over more intervals.
        expect(observer.log.diffs.length).toBeLessThanOrEqual(Math.ceil(elapsed / interval) + 1);
        expect(observer.log.diffs.length).toBeLessThan(50);
        expect([...observer.log.ids('joins')].sort()).toEqual([...ids].sort());
        expect(observer.log.ids('leaves').size).toBe(0);
        expect(observer.log.members('joins').get('m7')).toEqual({ id: 'm7', name: 'N7' });
        expect(await layer.presenceCount(group)).toBe(501);
        // eslint-disable-next-line no-console
        if (process.env.PRESENCE_FIGURES) console.log(`${name}: 500 joins in ${observer.log.diffs.length} diffs over ${elapsed} ms`);
      });

      test('a member that joins and leaves within one interval appears in no diff', async () => {
        const layer = await presenceLayer({ presenceInterval: 1000 });
        if (!layer) return;
        const other = factory.shared ? ((await presenceLayer({ presenceInterval: 1000 }))!) : layer;
        const group = freshGroup();
        const observer = await join(layer, group, { id: 'observer' });
        const [m1, x, m2] = [await other.newChannel(), await other.newChannel(), await other.newChannel()];
        // m1 opens the interval on the observer's side; x comes and goes within it; m2 marks its end.
        await other.presenceJoin(group, m1, { id: 'm1' });
        await other.presenceJoin(group, x, { id: 'x' });
        await other.presenceLeave(group, x);
        await other.presenceJoin(group, m2, { id: 'm2' });
        await until(() => observer.log.ids('joins').has('m2'), 5000, 'm2 in a join diff');
        expect(observer.log.ids('joins').has('m1')).toBe(true);
        expect(observer.log.ids('joins').has('x')).toBe(false);
        expect(observer.log.ids('leaves').has('x')).toBe(false);
        expect(observer.log.view(observer.snapshot)).toEqual(['m1', 'm2', 'observer']);
        expect((await layer.presence(group)).map((member) => member.id).sort()).toEqual(['m1', 'm2', 'observer']);
      });

      test('joining again on the same channel replaces its member', async () => {
        const layer = await presenceLayer();
        if (!layer) return;
        const group = freshGroup();
        const watcher = await join(layer, group, { id: 'watcher' });
        const channel = await layer.newChannel();
        await layer.presenceJoin(group, channel, { id: 'first' });
        await layer.presenceJoin(group, channel, { id: 'second', name: 'S' });
        expect((await layer.presence(group)).sort(byId)).toEqual([{ id: 'second', name: 'S' }, { id: 'watcher' }]);
        await layer.presenceLeave(group, channel);
        expect(await layer.presenceCount(group)).toBe(1);
        await join(layer, group, { id: 'marker' });
        await until(() => watcher.log.ids('joins').has('marker'), 5000, 'marker in a join diff');
        expect(watcher.log.view(watcher.snapshot)).toEqual(['marker', 'watcher']);
      });

      test('flush() takes this process\'s members out of presence, for every reader, and its members gauge to 0', async () => {
        const layer = await presenceLayer();
        if (!layer) return;
        const group = freshGroup();
        await join(layer, group, { id: 'f1' });
        await join(layer, group, { id: 'f2' });
        expect(layer.stats?.presenceMembers).toBe(2);
        await layer.flush();
        const reader = factory.shared ? (await presenceLayer())! : layer;
        expect(await reader.presence(group)).toEqual([]);
        expect(layer.stats?.presenceMembers).toBe(0);
      });

      if (factory.shared) {
        test('a process that closes takes its members out, and the others see them leave', async () => {
          const [a, b] = [await presenceLayer(), await factory.create({ presenceInterval: 50 })];
          if (!a) return void (await b.close());
          const group = freshGroup();
          const observer = await join(a, group, { id: 'observer' });
          await join(b, group, { id: 'b1' });
          await join(b, group, { id: 'b2' });
          await until(() => observer.log.ids('joins', 'observer').size === 2, 5000, 'b1 and b2 joined');
          await b.close();
          await until(() => observer.log.ids('leaves').size === 2, 5000, 'b1 and b2 left');
          expect(await a.presence(group)).toEqual([{ id: 'observer' }]);
        });
      }
    });

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
