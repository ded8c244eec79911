import { WorkersChannelLayer } from '../../src/layers/workers';
import type { LayerMessage } from '../../src/layers/layer';
import { FakeCluster } from '../support/fake-cluster';
import { until } from '../support/wait';
import { describeLayerConformance } from './conformance';

const settle = () => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

describe('WorkersChannelLayer over an in-process relay', () => {
  const cluster = new FakeCluster();
  describeLayerConformance('WorkersChannelLayer (two workers, one relay)', {
    create: async (options) => new WorkersChannelLayer({ ...options, ...cluster.connect() }),
    shared: true,
    // A named channel belongs to the workers that read it; a send before anyone reads it is dropped, as on pub/sub.
    storesUnreadMessages: false,
    ownChannelsLocal: true,
    // Joins ask the primary, which keeps the history; a storm of them is one IPC batch each way.
    cachesHistory: false,
  });
});

describe('WorkersChannelLayer: what a send costs over IPC', () => {
  let cluster: FakeCluster;
  let layers: WorkersChannelLayer[] = [];
  beforeEach(() => {
    cluster = new FakeCluster();
    layers = [0, 1, 2].map(() => new WorkersChannelLayer(cluster.connect()));
  });
  afterEach(async () => {
    await Promise.all(layers.map((layer) => layer.close()));
    await settle();
  });

  /** `count` listened members of `group` on `layer`; resolves with their inboxes. */
  async function members(layer: WorkersChannelLayer, group: string, count: number): Promise<LayerMessage[][]> {
    const inboxes: LayerMessage[][] = [];
    for (let i = 0; i < count; i++) {
      const inbox: LayerMessage[] = [];
      const channel = await layer.newChannel();
      await layer.listen(channel, { offer: (message) => inbox.push(message) > 0 });
      await layer.groupAdd(group, channel);
      inboxes.push(inbox);
    }
    return inboxes;
  }

  test('a group send is one message to the primary and one to each other worker with members, not one per member', async () => {
    const [a, b, c] = layers;
    const onA = await members(a, 'room', 10);
    const onB = await members(b, 'room', 10);
    // Each worker told the primary once (its first member), not ten times.
    expect(cluster.toPrimary.filter((m) => m.ck === 'join')).toHaveLength(2);
    cluster.resetCounts();

    await c.groupSend('room', { type: 'chat.message', message: 'hi' });
    await settle();
    expect(cluster.toPrimary.map((m) => m.ck)).toEqual(['group']);
    expect(cluster.ipcToPrimary).toBe(1);
    expect(cluster.toWorkers.map(({ worker, message }) => [worker, message.ck]).sort()).toEqual([
      [1, 'group'],
      [2, 'group'],
    ]);
    expect([...cluster.ipcToWorker.entries()].sort()).toEqual([
      [1, 1],
      [2, 1],
    ]);
    for (const inbox of [...onA, ...onB]) expect(inbox).toEqual([{ type: 'chat.message', message: 'hi' }]);

    // From a worker with members: its own are served in-process, the other worker gets one message.
    cluster.resetCounts();
    await a.groupSend('room', { type: 'chat.message', message: 'again' });
    await settle();
    expect(cluster.toWorkers.map(({ worker }) => worker)).toEqual([2]);
    for (const inbox of [...onA, ...onB]) expect(inbox).toHaveLength(2);
  });

  test('group sends made in one synchronous run travel as one IPC message each way, in order', async () => {
    const [a, b, c] = layers;
    const [onA] = await members(a, 'room', 1);
    const [onB] = await members(b, 'room', 1);
    cluster.resetCounts();
    const sends: Array<Promise<void>> = [];
    for (let n = 0; n < 100; n++) sends.push(c.groupSend('room', { type: 'n', n }));
    await Promise.all(sends);
    await settle();
    expect(cluster.ipcToPrimary).toBe(1);
    expect([...cluster.ipcToWorker.entries()].sort()).toEqual([
      [1, 1],
      [2, 1],
    ]);
    const expected = Array.from({ length: 100 }, (_, n) => ({ type: 'n', n }));
    expect(onA).toEqual(expected);
    expect(onB).toEqual(expected);
  });

  test('the last member leaving tells the primary, which then sends that worker nothing', async () => {
    const [a, b] = layers;
    const channel = await b.newChannel();
    await b.groupAdd('room', channel);
    await b.groupDiscard('room', channel);
    await settle();
    cluster.resetCounts();
    await a.groupSend('room', { type: 'x' });
    await settle();
    expect(cluster.toWorkers).toEqual([]);
  });

  test('groupAdd resolves only once the primary routes the group here', async () => {
    const [a, b] = layers;
    const channel = await b.newChannel();
    const inbox: LayerMessage[] = [];
    await b.listen(channel, { offer: (message) => inbox.push(message) > 0 });
    await b.groupAdd('late', channel);
    // No settling between: the join was acknowledged before groupAdd resolved.
    await a.groupSend('late', { type: 'x' });
    await settle();
    expect(inbox).toEqual([{ type: 'x' }]);
  });

  test('a named channel read by one worker gets sends from the others; unread, the send is dropped', async () => {
    const [a, b] = layers;
    const received = a.receive('jobs.thumbnails');
    await settle();
    await b.send('jobs.thumbnails', { type: 'job', n: 1 });
    expect(await received).toEqual({ type: 'job', n: 1 });
    await expect(b.send('jobs.nobody', { type: 'job' })).resolves.toBeUndefined();
  });

  test('a send to a full channel of another worker is counted there, since the sender cannot be told', async () => {
    const small = new WorkersChannelLayer({ ...cluster.connect(), capacity: 1 });
    layers.push(small);
    const channel = await small.newChannel();
    await layers[0].send(channel, { type: 'one' });
    await layers[0].send(channel, { type: 'two' });
    await settle();
    expect(small.skippedFull).toBe(1);
    expect(await small.receive(channel)).toEqual({ type: 'one' });
  });

  test('without the primary, sends to other workers fail with LAYER_UNAVAILABLE and health says degraded', async () => {
    const [a, b] = layers;
    const channel = await b.newChannel();
    cluster.disconnect(1);
    await expect(a.send(channel, { type: 'x' })).rejects.toMatchObject({ code: 'LAYER_UNAVAILABLE' });
    await expect(a.groupSend('room', { type: 'x' })).rejects.toMatchObject({ code: 'LAYER_UNAVAILABLE' });
    expect(a.health()).toMatchObject({ state: 'degraded', backend: 'workers' });
    // Local delivery still works.
    const own = await a.newChannel();
    await a.send(own, { type: 'local' });
    expect(await a.receive(own)).toEqual({ type: 'local' });
  });

  test('a history group send: one message to the primary, which stamps it and sends it to each worker with members, the sender included', async () => {
    const [a, b, c] = layers;
    await a.setHistory('chat_*', { size: 10, ttl: 60 });
    const [onA] = await members(a, 'chat_room', 1);
    const [onB] = await members(b, 'chat_room', 1);
    await settle();
    cluster.resetCounts();
    await a.groupSend('chat_room', { type: 'm', n: 1 });
    await settle();
    expect(cluster.toPrimary.map((m) => m.ck)).toEqual(['record']);
    expect(cluster.toWorkers.map(({ worker, message }) => [worker, message.ck]).sort()).toEqual([
      [1, 'group'],
      [2, 'group'],
    ]);
    for (const inbox of [onA, onB]) expect(inbox).toEqual([{ type: 'm', n: 1, epoch: expect.any(String), offset: 1 }]);
    // A worker that never joined still records: it learned the table on hello.
    await c.groupSend('chat_room', { type: 'm', n: 2 });
    await settle();
    expect(onB.map((m) => m.offset)).toEqual([1, 2]);
  });

  test('a join on its way is not undone by the last member leaving in the same run', async () => {
    const [a, b] = layers;
    await a.setHistory('chat_*', { size: 10, ttl: 60 });
    const first = await a.newChannel();
    await a.groupJoin('chat_race', first, { last: 0 });
    const second = await a.newChannel();
    const inbox: LayerMessage[] = [];
    await a.listen(second, { offer: (message) => inbox.push(message) > 0 });
    // The join leaves first, then the leave: at the primary the leave would remove this worker again.
    const joined = a.groupJoin('chat_race', second, { last: 0 });
    await a.groupDiscard('chat_race', first);
    await joined;
    await b.groupSend('chat_race', { type: 'after' });
    await settle();
    expect(inbox).toEqual([{ type: 'after', epoch: expect.any(String), offset: 1 }]);
  });

  test('a join waiting for a primary that is gone fails with LAYER_UNAVAILABLE instead of hanging', async () => {
    const [a] = layers;
    await a.setHistory('chat_*', { size: 10, ttl: 60 });
    const joining = a.groupJoin('chat_gone', await a.newChannel(), { last: 5 });
    cluster.disconnect(1);
    await expect(joining).rejects.toMatchObject({ code: 'LAYER_UNAVAILABLE' });
  });

  test('presence: a worker that dies takes its members out of the primary\'s table, and the others see them leave', async () => {
    const [a, b] = layers;
    const diffs: LayerMessage[] = [];
    const watcher = await a.newChannel();
    await a.listen(watcher, { offer: (message) => diffs.push(message) > 0 });
    await a.presenceJoin('chat_room', watcher, { id: 'alice', name: 'Alice' });
    const onB = await b.newChannel();
    expect(await b.presenceJoin('chat_room', onB, { id: 'bob' })).toEqual([{ id: 'alice', name: 'Alice' }, { id: 'bob' }]);
    await until(() => diffs.some((d) => (d.joins as Array<{ id: string }>).some((m) => m.id === 'bob')), 2000, 'bob\'s join');
    cluster.disconnect(2);
    await until(() => diffs.some((d) => (d.leaves as Array<{ id: string }>).some((m) => m.id === 'bob')), 2000, 'bob\'s leave');
    expect(await a.presence('chat_room')).toEqual([{ id: 'alice', name: 'Alice' }]);
  });

  test('presence: 100 joins in one run are one IPC message each way; a change goes only to workers with members of the group', async () => {
    const [a, b, c] = layers;
    await a.presenceJoin('chat_big', await a.newChannel(), { id: 'first' });
    await settle();
    cluster.resetCounts();
    const channels = await Promise.all(Array.from({ length: 100 }, () => b.newChannel()));
    await Promise.all(channels.map((channel, i) => b.presenceJoin('chat_big', channel, { id: `m${i}` })));
    await settle();
    expect(cluster.ipcToPrimary).toBe(1);
    expect(cluster.ipcToWorker.get(2)).toBe(1);
    expect(cluster.ipcToWorker.get(1)).toBe(1);
    expect(cluster.ipcToWorker.has(3)).toBe(false);
    expect(await c.presenceCount('chat_big')).toBe(101);
  });
});
