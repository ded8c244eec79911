import { InMemoryChannelLayer } from '../../src/layers/memory';
import { describeLayerConformance } from './conformance';

describeLayerConformance('InMemoryChannelLayer', {
  create: async (options) => new InMemoryChannelLayer(options),
  shared: false,
});

describe('InMemoryChannelLayer history is let go of as Redis would expire it', () => {
  const MINUTE = 60_000;
  const DAY = 24 * 60 * MINUTE;
  afterEach(() => jest.useRealTimers());

  test('messages past the ttl are released without any join; a group idle a day past its ttl is dropped and comes back in a new epoch', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const layer = new InMemoryChannelLayer();
    await layer.setHistory('room_*', { size: 10, ttl: 60 });
    for (let n = 1; n <= 3; n++) await layer.groupSend('room_idle', { type: 'h', n });
    await layer.groupSend('room_busy', { type: 'h', n: 1 });
    expect(layer.historyFootprint).toEqual({ groups: 2, messages: 4 });
    const idle = (await layer.groupJoin('room_idle', await layer.newChannel(), { last: 0 })).position;

    // Past the ttl: the messages go, the positions stay (`since` the last offset is still covered).
    jest.advanceTimersByTime(2 * MINUTE + 1);
    expect(layer.historyFootprint).toEqual({ groups: 2, messages: 0 });
    const covered = await layer.groupJoin('room_idle', await layer.newChannel(), { since: idle });
    expect(covered).toEqual({ recovered: true, messages: [], position: idle });

    // A day later, with room_busy sent to within its grace: room_idle's position is gone, room_busy's kept.
    jest.advanceTimersByTime(DAY - 10 * MINUTE);
    await layer.groupSend('room_busy', { type: 'h', n: 2 });
    jest.advanceTimersByTime(10 * MINUTE);
    expect(layer.historyFootprint).toEqual({ groups: 1, messages: 0 });
    const after = await layer.groupJoin('room_idle', await layer.newChannel(), { since: idle });
    expect(after.recovered).toBe(false);
    expect(after.position.offset).toBe(0);
    expect(after.position.epoch).not.toBe(idle.epoch);
    await layer.groupSend('room_idle', { type: 'h', n: 4 });
    const fresh = await layer.groupJoin('room_idle', await layer.newChannel(), { last: 5 });
    expect(fresh.messages).toEqual([{ type: 'h', n: 4, epoch: after.position.epoch, offset: 1 }]);

    // The sweep's timer ends with the layer.
    expect(jest.getTimerCount()).toBe(1);
    await layer.close();
    expect(jest.getTimerCount()).toBe(0);
  });
});
