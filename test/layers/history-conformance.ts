// History and recovery, for every layer that keeps history (part of the conformance suite, see conformance.ts).
import { encode } from '@msgpack/msgpack';
import { type HistoryPolicy, HistoryNotKept, type JoinFrom, type JoinResult } from '../../src/layers/history';
import type { ChannelLayer, LayerMessage, LayerOptions } from '../../src/layers/layer';
import type { Publisher } from '../../src/publisher';
import { runCli } from '../support/processes';
import { until } from '../support/wait';

/** What the Redis-backed suites give the history cases that flush, restart or watch Redis. */
export interface RedisControl {
  /** FLUSHALL on every node. */
  flushAll(): Promise<void>;
  /** Stops every node and starts it again on its port, empty (as a crash and restart). */
  restart(): Promise<void>;
  /** INFO commandstats calls of `command` (e.g. 'evalsha'), summed over nodes. */
  calls(command: string): number;
  /** PUBLISH (SPUBLISH in Cluster) raw bytes on a Redis channel, as a Django process would. */
  publishRaw(redisChannel: string, bytes: Buffer): Promise<void>;
  /** A `createPublisher` on this Redis. */
  publisher(): Promise<Publisher>;
  /** Environment for `channelkit publish` on this Redis (REDIS_URL or REDIS_CLUSTER_URL). */
  cliEnv(): NodeJS.ProcessEnv;
}

interface HistoryFactory {
  create(options?: LayerOptions): Promise<ChannelLayer>;
  shared: boolean;
  redis?: RedisControl;
  cachesHistory?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let groups = 0;
/** A group (and its pattern) of its own per test: Redis keeps tables and streams across tests. */
const uniqueGroup = () => `hist-${process.pid}-${Date.now().toString(36)}-${++groups}`;

/** Collects what a channel gets, live. */
class Inbox {
  readonly messages: LayerMessage[] = [];
  offer(message: LayerMessage): boolean {
    this.messages.push(message);
    return true;
  }
  get offsets(): unknown[] {
    return this.messages.map((m) => m.offset);
  }
}

const offsetsOf = (result: JoinResult) => result.messages.map((m) => m.offset);
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

export function describeHistoryConformance(factory: HistoryFactory): void {
  describe('history and recovery', () => {
    const open: ChannelLayer[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((layer) => layer.close()));
    });

    /** A layer, or null when its backend keeps no history (it says so with code UNSUPPORTED). */
    async function historyLayer(): Promise<ChannelLayer | null> {
      const layer = await factory.create();
      open.push(layer);
      try {
        await layer.setHistory('capability-probe-*', { size: 1, ttl: 1 });
      } catch (error) {
        if ((error as { code?: string }).code === 'UNSUPPORTED') return null;
        throw error;
      }
      return layer;
    }
    async function another(): Promise<ChannelLayer> {
      const layer = await factory.create();
      open.push(layer);
      return layer;
    }
    /** A member that listens: its inbox, and the join's result. */
    async function member(layer: ChannelLayer, group: string, from: JoinFrom): Promise<{ inbox: Inbox; result: JoinResult; channel: string }> {
      const channel = await layer.newChannel();
      const inbox = new Inbox();
      await layer.listen(channel, inbox);
      const result = await layer.groupJoin(group, channel, from);
      return { inbox, result, channel };
    }
    async function withHistory(layer: ChannelLayer, policy: HistoryPolicy = { size: 100, ttl: 60 }): Promise<string> {
      const group = uniqueGroup();
      await layer.setHistory(group, policy);
      return group;
    }
    async function sendMany(layer: ChannelLayer, group: string, n: number, from = 1): Promise<void> {
      for (let i = from; i < from + n; i++) await layer.groupSend(group, { type: 'h', n: i });
    }

    test('a layer that keeps no history refuses setHistory and groupJoin with code UNSUPPORTED', async () => {
      const layer = await historyLayer();
      if (layer) return; // this backend keeps history: the cases below apply
      const plain = await another();
      await expect(plain.groupJoin('g', await plain.newChannel(), { last: 1 })).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    });

    test('members of a history group get offset (+1 each) and epoch; `last` returns oldest first', async () => {
      const layer = await historyLayer();
      if (!layer) return;
      const group = await withHistory(layer);
      const watcher = await member(layer, group, { last: 0 });
      expect(watcher.result).toEqual({ recovered: true, messages: [], position: { epoch: expect.any(String), offset: 0 } });
      await sendMany(layer, group, 5);
      await until(() => watcher.inbox.messages.length === 5, 5000, 'five live messages');
      const epoch = watcher.inbox.messages[0].epoch;
      expect(typeof epoch).toBe('string');
      expect(watcher.inbox.messages).toEqual(range(1, 5).map((n) => ({ type: 'h', n, epoch, offset: n })));
      // offset is the last key (the Redis payload appends it last; the memory layer matches).
      expect(Object.keys(watcher.inbox.messages[0]).slice(-2)).toEqual(['epoch', 'offset']);

      const late = await member(layer, group, { last: 3 });
      expect(late.result.recovered).toBe(true);
      expect(late.result.messages.map((m) => m.n)).toEqual([3, 4, 5]);
      expect(offsetsOf(late.result)).toEqual([3, 4, 5]);
      expect(late.result.position).toEqual({ epoch, offset: 5 });
      expect((await member(layer, group, { last: 100 })).result.messages.map((m) => m.n)).toEqual([1, 2, 3, 4, 5]);
    });

    test('a sender\'s own `offset` and `epoch` keys are replaced (reserved in history groups)', async () => {
      const layer = await historyLayer();
      if (!layer) return;
      const group = await withHistory(layer);
      await layer.groupSend(group, { type: 'h', offset: 999, epoch: 'mine', text: 'x' });
      const { result } = await member(layer, group, { last: 1 });
      expect(result.messages[0]).toEqual({ type: 'h', text: 'x', epoch: result.position.epoch, offset: 1 });
    });

    test('`since` the latest offset returns none and recovered; `since` an older one returns the rest', async () => {
      const layer = await historyLayer();
      if (!layer) return;
      const group = await withHistory(layer);
      await sendMany(layer, group, 4);
      const { result } = await member(layer, group, { last: 0 });
      expect(result.position.offset).toBe(4);
      expect((await member(layer, group, { since: result.position })).result).toEqual({ recovered: true, messages: [], position: result.position });
      const rest = (await member(layer, group, { since: { epoch: result.position.epoch, offset: 1 } })).result;
      expect(rest.recovered).toBe(true);
      expect(offsetsOf(rest)).toEqual([2, 3, 4]);
    });

    test('`since` another epoch, or beyond what was trimmed, is not recovered: no messages, the current position', async () => {
      const layer = await historyLayer();
      if (!layer) return;
      const group = await withHistory(layer, { size: 3, ttl: 60 });
      await sendMany(layer, group, 6);
      const { result } = await member(layer, group, { last: 10 });
      expect(offsetsOf(result)).toEqual([4, 5, 6]); // trimmed by size
      const position = result.position;
      const otherEpoch = (await member(layer, group, { since: { epoch: `${position.epoch}x`, offset: 5 } })).result;
      expect(otherEpoch).toEqual({ recovered: false, messages: [], position });
      const trimmed = (await member(layer, group, { since: { epoch: position.epoch, offset: 2 } })).result;
      expect(trimmed).toEqual({ recovered: false, messages: [], position });
      // The oldest kept one's predecessor is still covered.
      expect(offsetsOf((await member(layer, group, { since: { epoch: position.epoch, offset: 3 } })).result)).toEqual([4, 5, 6]);
    });

    test('history is trimmed by age: after ttl the messages are gone, the offset stays', async () => {
      const layer = await historyLayer();
      if (!layer) return;
      const group = await withHistory(layer, { size: 100, ttl: 1 });
      await sendMany(layer, group, 3);
      const before = (await member(layer, group, { last: 10 })).result;
      expect(offsetsOf(before)).toEqual([1, 2, 3]);
      await sleep(1300); // past the ttl: the elapsed time is the condition under test
      const fresh = factory.shared ? await another() : layer; // a process that never saw them, and this one's cache
      for (const reader of new Set([layer, fresh])) {
        const after = (await member(reader, group, { last: 10 })).result;
        expect(after).toEqual({ recovered: true, messages: [], position: before.position });
        expect((await member(reader, group, { since: { epoch: before.position.epoch, offset: 1 } })).result.recovered).toBe(false);
      }
      await layer.groupSend(group, { type: 'h', n: 4 });
      // The join may come before or after 4 reaches this process: in the replay or live, exactly once.
      const later = await member(layer, group, { last: 10 });
      const all = () => [...offsetsOf(later.result), ...later.inbox.offsets];
      await until(() => all().length > 0, 5000, 'offset 4');
      expect(all()).toEqual([4]);
    });

    test('groupJoin of a group without history throws HistoryNotKept; setHistory(null) stops recording', async () => {
      const layer = await historyLayer();
      if (!layer) return;
      await expect(layer.groupJoin(uniqueGroup(), await layer.newChannel(), { last: 1 })).rejects.toBeInstanceOf(HistoryNotKept);
      await expect(layer.groupJoin('x', await layer.newChannel(), { last: 101 })).rejects.toBeInstanceOf(RangeError);
      const group = await withHistory(layer);
      const watcher = await member(layer, group, { last: 0 });
      await layer.setHistory(group, null);
      await layer.groupSend(group, { type: 'plain' });
      await until(() => watcher.inbox.messages.length === 1, 5000, 'the plain message');
      expect(watcher.inbox.messages[0]).toEqual({ type: 'plain' });
    });

    test('a new memory layer (a new process) starts a new epoch', async () => {
      const layer = await historyLayer();
      if (!layer || factory.shared) return;
      const group = await withHistory(layer);
      await sendMany(layer, group, 1);
      const first = (await member(layer, group, { last: 1 })).result.position;
      const next = await another();
      await next.setHistory(group, { size: 10, ttl: 60 });
      await next.groupSend(group, { type: 'h' });
      const second = (await member(next, group, { last: 1 })).result.position;
      expect(second.offset).toBe(1);
      expect(second.epoch).not.toBe(first.epoch);
      expect((await member(next, group, { since: first })).result.recovered).toBe(false);
    });

    test('offsets are contiguous across senders in two processes, and every process sees them in order', async () => {
      const a = await historyLayer();
      if (!a) return;
      const b = factory.shared ? await another() : a;
      const group = await withHistory(a);
      const [inA, inB] = [await member(a, group, { last: 0 }), await member(b, group, { last: 0 })];
      await Promise.all([
        (async () => { for (let i = 0; i < 25; i++) await a.groupSend(group, { type: 'h', from: 'a' }); })(),
        (async () => { for (let i = 0; i < 25; i++) await b.groupSend(group, { type: 'h', from: 'b' }); })(),
      ]);
      await until(() => inA.inbox.messages.length === 50 && inB.inbox.messages.length === 50, 5000, 'fifty each');
      expect(inA.inbox.offsets).toEqual(range(1, 50));
      expect(inB.inbox.offsets).toEqual(range(1, 50));
    });

    test('recovery while another process publishes, 30 rounds with random timing: no gap, no duplicate', async () => {
      const a = await historyLayer();
      if (!a) return;
      const b = factory.shared ? await another() : a;
      const group = await withHistory(a, { size: 1000, ttl: 60 });
      const epoch = await epochOf(a, group);
      let sent = 0;
      let stayer: string | null = null;
      for (let round = 0; round < 30; round++) {
        // Half the rounds with a member already in the group here (the cache path), half without (a fresh read).
        if (round === 15) stayer = (await member(a, group, { last: 0 })).channel;
        if (round === 25 && stayer) await a.groupDiscard(group, stayer);
        const before = sent;
        const count = 5 + Math.floor(Math.random() * 15);
        const publishing = (async () => {
          for (let i = 0; i < count; i++) {
            await b.groupSend(group, { type: 'h', round, i });
            sent++;
            if (Math.random() < 0.5) await sleep(Math.random() * 3);
          }
        })();
        await sleep(Math.random() * 8);
        const since = Math.max(0, before - Math.floor(Math.random() * 4));
        const from: JoinFrom = round % 3 === 2 ? { last: 100 } : { since: { epoch, offset: since } };
        const joined = await member(a, group, from);
        await publishing;
        const all = () => [...offsetsOf(joined.result), ...joined.inbox.offsets];
        await until(() => (all().at(-1) ?? joined.result.position.offset) === sent, 5000, `round ${round}: every offset up to ${sent}`);
        expect(joined.result.recovered).toBe(true);
        expect(joined.result.position.epoch).toBe(epoch);
        const start = 'since' in from ? from.since.offset + 1 : Math.max(1, joined.result.position.offset - 99);
        expect(all()).toEqual(range(start, sent));
        await a.groupDiscard(group, joined.channel);
      }
    }, 60_000);
    async function epochOf(layer: ChannelLayer, group: string): Promise<string> {
      const channel = await layer.newChannel();
      const result = await layer.groupJoin(group, channel, { last: 0 });
      await layer.groupDiscard(group, channel);
      return result.position.epoch;
    }

    test('a storm of 500 joins of one group in one process costs at most two history reads (one each where nothing is cached)', async () => {
      const a = await historyLayer();
      if (!a) return;
      const b = factory.shared ? await another() : a;
      const group = await withHistory(a);
      await sendMany(b, group, 10);
      const epoch = (await b.groupJoin(group, await b.newChannel(), { last: 0 })).position.epoch;
      const channels = await Promise.all(Array.from({ length: 500 }, () => a.newChannel()));
      const reads = a.historyReads;
      const results = await Promise.all(
        channels.map((channel, i) => a.groupJoin(group, channel, i % 2 ? { last: 3 } : { since: { epoch, offset: 5 } })),
      );
      for (const [i, result] of results.entries()) expect(offsetsOf(result)).toEqual(i % 2 ? [8, 9, 10] : [6, 7, 8, 9, 10]);
      if (factory.cachesHistory === false) {
        expect(a.historyReads - reads).toBe(500);
        return;
      }
      expect(a.historyReads - reads).toBeLessThanOrEqual(2);
      if (factory.shared) expect(a.historyReads - reads).toBeGreaterThanOrEqual(1);
      // A second wave is served from the cache: no read at all.
      const again = a.historyReads;
      await Promise.all(channels.slice(0, 100).map((channel) => a.groupJoin(group, channel, { last: 1 })));
      expect(a.historyReads).toBe(again);
    });

    if (factory.shared) {
      test('a setHistory in one process makes the others record (the table lives in Redis)', async () => {
        const a = await historyLayer();
        if (!a) return;
        const b = await another();
        await b.groupSend('warm-up', { type: 'x' }); // b has loaded the table before the change
        const group = uniqueGroup();
        await a.setHistory(group, { size: 10, ttl: 60 });
        const late = await another(); // created after: loads the table before its first send
        await late.groupSend(group, { type: 'h', n: 1 });
        await until(async () => {
          await b.groupSend(group, { type: 'h', n: 2 });
          return (await a.groupJoin(group, await a.newChannel(), { last: 10 })).messages.some((m) => m.n === 2);
        }, 5000, 'b recording after hearing the change');
        const { messages } = await a.groupJoin(group, await a.newChannel(), { last: 10 });
        expect(messages[0]).toMatchObject({ n: 1, offset: 1 });
        expect(messages.map((m) => m.offset)).toEqual(range(1, messages.length));
      });

      test('recovery across a process restart: a new layer instance on the same Redis recovers', async () => {
        const a = await historyLayer();
        if (!a) return;
        const group = await withHistory(a);
        const seen = await member(a, group, { last: 0 });
        await sendMany(a, group, 3);
        await until(() => seen.inbox.messages.length === 3, 5000, 'three');
        const position = { epoch: seen.inbox.messages[2].epoch as string, offset: 3 };
        await sendMany(a, group, 2, 4);
        await a.close();
        const restarted = await another();
        const { result } = await member(restarted, group, { since: position });
        expect(result).toEqual({ recovered: true, messages: [expect.objectContaining({ n: 4, offset: 4 }), expect.objectContaining({ n: 5, offset: 5 })], position: { epoch: position.epoch, offset: 5 } });
      });
    }

    if (factory.redis) {
      const redis = factory.redis;

      test('a groupSend to a group without history runs no script: one plain PUBLISH', async () => {
        const layer = await historyLayer();
        if (!layer) return;
        const channel = await layer.newChannel();
        await layer.groupAdd('no-history-here', channel);
        await layer.groupSend('no-history-here', { type: 'warm' });
        const scripts = redis.calls('evalsha') + redis.calls('eval');
        const publishes = redis.calls('publish') + redis.calls('spublish');
        await layer.groupSend('no-history-here', { type: 'plain' });
        expect(redis.calls('evalsha') + redis.calls('eval')).toBe(scripts);
        expect(redis.calls('publish') + redis.calls('spublish')).toBe(publishes + 1);
        // And a history group: one EVALSHA, whose script runs the XADD and the PUBLISH (counted inside it).
        const group = await withHistory(layer);
        await layer.groupSend(group, { type: 'warm' });
        const [s2, p2, x2] = [redis.calls('evalsha'), redis.calls('publish') + redis.calls('spublish'), redis.calls('xadd')];
        await layer.groupSend(group, { type: 'recorded' });
        expect(redis.calls('evalsha')).toBe(s2 + 1);
        expect(redis.calls('xadd')).toBe(x2 + 1);
        expect(redis.calls('publish') + redis.calls('spublish')).toBe(p2 + 1);
      });

      test('a Django-like raw msgpack PUBLISH to a history group is delivered without offset, not recorded', async () => {
        const layer = await historyLayer();
        if (!layer) return;
        const group = await withHistory(layer);
        await layer.groupSend(group, { type: 'h', n: 1 });
        const watcher = await member(layer, group, { last: 0 });
        await redis.publishRaw(`asgi__group__${group}`, Buffer.from(encode({ type: 'from.django', text: 'hi' })));
        await layer.groupSend(group, { type: 'h', n: 2 });
        await until(() => watcher.inbox.messages.length === 2, 5000, 'both');
        expect(watcher.inbox.messages[0]).toEqual({ type: 'from.django', text: 'hi' });
        expect(watcher.inbox.messages[1]).toMatchObject({ n: 2, offset: 2 });
        expect(offsetsOf((await member(layer, group, { last: 10 })).result)).toEqual([1, 2]);
      });

      test('the publisher and `channelkit publish` record for history groups', async () => {
        const layer = await historyLayer();
        if (!layer) return;
        const group = uniqueGroup();
        const publisher = await redis.publisher();
        try {
          await publisher.setHistory(group, { size: 10, ttl: 60 });
          await publisher.groupSend(group, { type: 'h', n: 1 });
        } finally {
          await publisher.close();
        }
        const cli = await runCli(['publish', '--group', group, JSON.stringify({ type: 'h', n: 2 })], redis.cliEnv());
        expect(cli.code).toBe(0);
        const { result } = await member(layer, group, { last: 10 });
        expect(result.messages).toEqual([
          expect.objectContaining({ n: 1, offset: 1, epoch: result.position.epoch }),
          expect.objectContaining({ n: 2, offset: 2, epoch: result.position.epoch }),
        ]);
      }, 30_000);

      test('the epoch changes after FLUSHALL and after a Redis restart; `since` an old epoch is not recovered', async () => {
        const layer = await historyLayer();
        if (!layer) return;
        const group = await withHistory(layer);
        await sendMany(layer, group, 2);
        const first = (await member(layer, group, { last: 0 })).result.position;
        await redis.flushAll();
        await layer.groupSend(group, { type: 'h', n: 3 }); // this process still knows the pattern
        const afterFlush = (await another().then((b) => b.setHistory(group, { size: 100, ttl: 60 }).then(() => member(b, group, { last: 5 })))).result;
        expect(afterFlush.position.epoch).not.toBe(first.epoch);
        expect(offsetsOf(afterFlush)).toEqual([1]);
        expect((await member(layer, group, { since: first })).result).toMatchObject({ recovered: false, messages: [] });

        await redis.restart();
        // The layer reconnects by itself and writes its own patterns again; sends succeed once it is back.
        await until(async () => {
          try {
            await layer.groupSend(group, { type: 'h', n: 4 });
            return true;
          } catch {
            return false;
          }
        }, 20_000, 'sending again after the restart', 200);
        const fresh = await another();
        await until(async () => {
          try {
            const { result } = await member(fresh, group, { last: 5 });
            return result.messages.length > 0;
          } catch {
            return false;
          }
        }, 20_000, 'the table back in Redis and the message recorded', 200);
        const afterRestart = (await member(fresh, group, { last: 5 })).result;
        expect(afterRestart.position.epoch).not.toBe(afterFlush.position.epoch);
        expect(afterRestart.messages[0]).toMatchObject({ offset: 1 });
        expect((await member(fresh, group, { since: afterFlush.position })).result.recovered).toBe(false);
      }, 60_000);
    }
  });
}

