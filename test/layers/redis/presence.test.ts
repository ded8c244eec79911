// Presence on the Redis pub/sub layer beyond the conformance suite: command counts, a killed process, a Redis restart.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createClient } from 'redis';
import { encode } from '@msgpack/msgpack';
import type { LayerMessage } from '../../../src/layers/layer';
import type { PresenceDiff } from '../../../src/layers/presence';
import { RedisPubSubChannelLayer, type RedisPubSubLayerOptions } from '../../../src/layers/redis/pubsub';
import { RedisServer, describeRedis, layersOnPrivateRedis } from '../../support/redis';
import { until } from '../../support/wait';

/** Calls of every command since the last CONFIG RESETSTAT, by name, without INFO and CONFIG themselves. */
function commandCalls(server: RedisServer): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const line of server.cli('INFO', 'commandstats').split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (match && !/^(info|config)\b/.test(match[1])) calls[match[1]] = Number(match[2]);
  }
  return calls;
}
const total = (calls: Record<string, number>) => Object.values(calls).reduce((a, b) => a + b, 0);

/** The diffs a channel receives. */
function diffLog(layer: RedisPubSubChannelLayer, channel: string): Promise<PresenceDiff[]> {
  const diffs: PresenceDiff[] = [];
  return layer
    .listen(channel, {
      offer(message: LayerMessage) {
        if (message.type === 'presence.diff') diffs.push(message as unknown as PresenceDiff);
        return true;
      },
    })
    .then(() => diffs);
}
const ids = (diffs: PresenceDiff[], kind: 'joins' | 'leaves') => new Set(diffs.flatMap((diff) => diff[kind].map((member) => member.id)));

describeRedis('Redis presence', () => {
  const fixture = layersOnPrivateRedis((url, options: RedisPubSubLayerOptions) => new RedisPubSubChannelLayer({ presenceInterval: 50, ...options, url }));
  const make = (options: RedisPubSubLayerOptions = {}) => fixture.make(options);

  test('a join and a leave cost the same Redis commands in a room of 1 as in a room of 1000 (INFO commandstats)', async () => {
    // No heartbeat during the measurement.
    const [a, b] = [make({ presenceHeartbeat: 600_000 }), make({ presenceHeartbeat: 600_000 })];
    // Scripts loaded once (the first use of each is an EVAL after NOSCRIPT) before anything is counted.
    const warm = await b.newChannel();
    await b.presenceJoin('warm-up', warm, { id: 'w' });
    await b.presenceLeave('warm-up', warm);
    const measure = async (group: string, size: number) => {
      const channels = await Promise.all(Array.from({ length: size }, () => a.newChannel()));
      await Promise.all(channels.map((channel, i) => a.presenceJoin(group, channel, { id: `m${i}`, name: `Member ${i}` })));
      const channel = await b.newChannel();
      fixture.server.cli('CONFIG', 'RESETSTAT');
      const snapshot = await b.presenceJoin(group, channel, { id: 'joiner', name: 'J' });
      const joinCalls = commandCalls(fixture.server);
      fixture.server.cli('CONFIG', 'RESETSTAT');
      await b.presenceLeave(group, channel);
      const leaveCalls = commandCalls(fixture.server);
      expect(snapshot).toHaveLength(size + 1);
      return { joinCalls, leaveCalls };
    };
    const small = await measure('room-of-1', 1);
    const big = await measure('room-of-1000', 1000);
    expect(big.joinCalls).toEqual(small.joinCalls);
    expect(big.leaveCalls).toEqual(small.leaveCalls);
    // One script per join (with the presence channel's SUBSCRIBE for the process's first member) and per leave.
    expect(small.joinCalls.evalsha).toBe(1);
    expect(small.leaveCalls.evalsha).toBe(1);
    if (process.env.PRESENCE_FIGURES) {
      // eslint-disable-next-line no-console
      console.log(`join: ${total(small.joinCalls)} calls ${JSON.stringify(small.joinCalls)}; leave: ${total(small.leaveCalls)} calls ${JSON.stringify(small.leaveCalls)}`);
    }
  }, 60_000);

  test('presence changes travel on their own channel: a subscriber of the group channel (Django) sees none', async () => {
    const django = createClient({ url: fixture.server.url });
    await django.connect();
    const heard: string[] = [];
    await django.subscribe('asgi__group__quiet', (message) => heard.push(message));
    try {
      const layer = make();
      const channel = await layer.newChannel();
      await layer.groupAdd('quiet', channel);
      await layer.presenceJoin('quiet', channel, { id: 'q' });
      await layer.presenceLeave('quiet', channel);
      await layer.groupSend('quiet', { type: 'marker' });
      await until(() => heard.length === 1, 5000, 'the group send');
      // The presence publishes went first on the same connection, so they would have arrived before the marker.
      expect(heard).toHaveLength(1);
      // Presence has a channel of its own (kept until the next heartbeat after its last local member left).
      expect(fixture.server.cli('PUBSUB', 'CHANNELS', '*quiet*').split('\n').filter(Boolean).sort()).toEqual(['asgi__group__quiet', 'asgi__presence_events__{quiet}']);
    } finally {
      await django.close();
    }
  });

  test('after Redis restarts empty, a process re-adds its members and the others keep them', async () => {
    const options = { presenceHeartbeat: 300, presenceTimeout: 1000 };
    const [a, b] = [make(options), make(options)];
    const [ca, cb] = [await a.newChannel(), await b.newChannel()];
    const diffs = await diffLog(b, cb);
    await a.presenceJoin('restart', ca, { id: 'survivor', name: 'S' });
    await b.presenceJoin('restart', cb, { id: 'watcher' });
    await fixture.server.stop();
    await fixture.server.start();
    await until(async () => (await a.presenceCount('restart').catch(() => 0)) === 2, 15_000, 'both members back in Redis');
    expect((await b.presence('restart')).map((member) => member.id).sort()).toEqual(['survivor', 'watcher']);
    // Past the settling reconcile (one timeout after the resync), nobody was shown a leave.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(ids(diffs, 'leaves')).toEqual(new Set());
  }, 30_000);

  test('a dead process is swept at most 500 members per group and heartbeat, with leave diffs, until none is left', async () => {
    // A process that died without leaving: 1200 members written as its JOIN script would, its deadline passed.
    const writer = createClient({ url: fixture.server.url });
    await writer.connect();
    const dead = 'deadbeefdeadbeef';
    const ghosts = Array.from({ length: 1200 }, (_, i) => `ghost-${i}`);
    const multi = writer.multi();
    for (const id of ghosts) {
      multi.hSet('asgi__presence__{haunted}', id, Buffer.from(encode({ id, name: 'Ghost' })));
      multi.zAdd('asgi__presence__{haunted}:index', { score: 0, value: `${dead}:${id}` });
    }
    multi.zAdd('asgi__presence__{haunted}:procs', { score: Date.now() - 1000, value: dead });
    await multi.exec();
    await writer.close();

    const layer = make({ presenceHeartbeat: 200 });
    const channel = await layer.newChannel();
    const diffs = await diffLog(layer, channel);
    const snapshot = await layer.presenceJoin('haunted', channel, { id: 'living' });
    expect(snapshot).toHaveLength(1201);
    await until(() => ids(diffs, 'leaves').size === 1200, 10_000, 'every ghost swept');
    const sizes = diffs.map((diff) => diff.leaves.length).filter((n) => n > 0);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(500);
    expect(await layer.presence('haunted')).toEqual([{ id: 'living' }]);
    expect(fixture.server.cli('ZRANGE', 'asgi__presence__{haunted}:procs', '0', '-1').trim()).toBe(layer.processId);
  });

  describe('with a real child process', () => {
    let child: ChildProcess | null = null;
    afterEach(() => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      child = null;
    });
    /** A process with `count` members of `group` (test/fixtures/presence-member.ts); its stdout lines as JSON. */
    const spawnMembers = (group: string, count: number) => {
      const lines: Array<Record<string, unknown>> = [];
      const proc = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(__dirname, '..', '..', 'fixtures', 'presence-member.ts')], {
        cwd: join(__dirname, '..', '..', '..'),
        env: { ...process.env, REDIS_URL: fixture.server.url, GROUP: group, MEMBERS: String(count) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      child = proc;
      let buffered = '';
      proc.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop()!;
        for (const part of parts) lines.push(JSON.parse(part) as Record<string, unknown>);
      });
      return { proc, lines };
    };

    test('after Redis restarts empty, a member that left meanwhile and the members of a process killed meanwhile leave; the living do not', async () => {
      const options = { presenceHeartbeat: 300, presenceTimeout: 1500 };
      const [a, b] = [make(options), make(options)];
      const [survivor, leaver, watcher] = [await a.newChannel(), await a.newChannel(), await b.newChannel()];
      const diffs = await diffLog(b, watcher);
      await a.presenceJoin('outage', survivor, { id: 'survivor' });
      await a.presenceJoin('outage', leaver, { id: 'leaver' });
      await b.presenceJoin('outage', watcher, { id: 'watcher' });
      const { proc, lines } = spawnMembers('outage', 2);
      await until(() => lines.some((line) => 'snapshot' in line), 20_000, 'the child joined');
      await until(() => ids(diffs, 'joins').has('child-1'), 5000, "the child's joins seen by b");

      await fixture.server.stop();
      // Neither leave can reach Redis: a's is owed (and finds nothing to remove once Redis is back
      // empty), the killed child's deadline is gone with the Redis that held it.
      await a.presenceLeave('outage', leaver);
      proc.kill('SIGKILL');
      await fixture.server.start();

      const gone = ['leaver', 'child-0', 'child-1'];
      await until(() => gone.every((id) => ids(diffs, 'leaves').has(id)), 15_000, 'the leaves missed during the outage');
      expect(ids(diffs, 'leaves').has('survivor')).toBe(false);
      expect((await b.presence('outage')).map((member) => member.id).sort()).toEqual(['survivor', 'watcher']);
      // Applied in order, b's diffs leave exactly the members Redis has.
      const members = new Set(['survivor', 'leaver', 'watcher', 'child-0', 'child-1']);
      for (const diff of diffs) {
        for (const member of diff.joins) members.add(member.id);
        for (const member of diff.leaves) members.delete(member.id);
      }
      expect([...members].sort()).toEqual(['survivor', 'watcher']);
    }, 60_000);

    test('its joins and ours are seen on both sides; after SIGKILL its members leave, with leave diffs, within 30 s', async () => {
      const observerLayer = make(); // default heartbeat (5 s) and timeout (15 s)
      const channel = await observerLayer.newChannel();
      const diffs = await diffLog(observerLayer, channel);
      await observerLayer.presenceJoin('crash', channel, { id: 'observer', name: 'O' });

      const { proc, lines } = spawnMembers('crash', 3);
      await until(() => lines.some((line) => 'snapshot' in line), 20_000, 'the child joined');
      const snapshot = lines.find((line) => 'snapshot' in line)!.snapshot as Array<{ id: string }>;
      expect(snapshot.map((member) => member.id).sort()).toEqual(['child-0', 'child-1', 'child-2', 'observer']);
      await until(() => ids(diffs, 'joins').has('child-2'), 5000, "the child's joins here");
      expect([...ids(diffs, 'joins')].filter((id) => id !== 'observer').sort()).toEqual(['child-0', 'child-1', 'child-2']);

      // Ours reaches the child.
      const second = await observerLayer.newChannel();
      await observerLayer.presenceJoin('crash', second, { id: 'late' });
      const childSaw = () => lines.filter((line) => line.type === 'presence.diff').flatMap((line) => (line.joins as Array<{ id: string }>).map((m) => m.id));
      await until(() => childSaw().includes('late'), 5000, 'the child sees our join');

      const killedAt = Date.now();
      proc.kill('SIGKILL');
      await until(() => ['child-0', 'child-1', 'child-2'].every((id) => ids(diffs, 'leaves').has(id)), 30_000, "the child's leaves");
      const took = Date.now() - killedAt;
      expect(took).toBeLessThan(30_000);
      expect((await observerLayer.presence('crash')).map((member) => member.id).sort()).toEqual(['late', 'observer']);
      expect(await observerLayer.presenceCount('crash')).toBe(2);
      // eslint-disable-next-line no-console
      if (process.env.PRESENCE_FIGURES) console.log(`members of a SIGKILLed process left after ${took} ms`);
    }, 60_000);
  });
});
