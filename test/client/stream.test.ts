// StreamTracker: the position a room recovers from, and the duplicate rule (never an offset twice per epoch).
import { StreamTracker } from '../../src/client';

test('hands each offset of an epoch once, in the order seen; drops one at or below the last', () => {
  const stream = new StreamTracker();
  const passed = [1, 2, 2, 3, 1, 5, 4, 6].filter((offset) => stream.accept({ epoch: 'a', offset }));
  expect(passed).toEqual([1, 2, 3, 5, 6]);
  expect(stream.duplicates).toBe(3);
  expect(stream.position).toEqual({ epoch: 'a', offset: 6 });
});

test('another epoch starts the count again', () => {
  const stream = new StreamTracker();
  expect(stream.accept({ epoch: 'a', offset: 7 })).toBe(true);
  expect(stream.accept({ epoch: 'b', offset: 1 })).toBe(true);
  expect(stream.accept({ epoch: 'b', offset: 1 })).toBe(false);
  expect(stream.position).toEqual({ epoch: 'b', offset: 1 });
});

test('frames without both offset and epoch (a channels_redis group send) always pass and move nothing', () => {
  const stream = new StreamTracker();
  expect(stream.accept({})).toBe(true);
  expect(stream.accept({ offset: 3 })).toBe(true);
  expect(stream.accept({ epoch: 'a' })).toBe(true);
  expect(stream.accept({ epoch: 'a', offset: 1.5 })).toBe(true);
  expect(stream.position).toBeNull();
});

test('lost(): reloading keeps the count of the same epoch (no repeats) and resets it for a new one', () => {
  const same = new StreamTracker();
  same.accept({ epoch: 'a', offset: 10 });
  same.lost('a', 250, true);
  expect(same.accept({ epoch: 'a', offset: 9 })).toBe(false);
  expect(same.accept({ epoch: 'a', offset: 201 })).toBe(true);

  const other = new StreamTracker();
  other.accept({ epoch: 'a', offset: 10 });
  other.lost('b', 4, true);
  expect(other.accept({ epoch: 'b', offset: 1 })).toBe(true);
});

test('lost() without reloading goes on live from the room\'s position', () => {
  const stream = new StreamTracker();
  stream.accept({ epoch: 'a', offset: 10 });
  stream.lost('a', 250, false);
  expect(stream.position).toEqual({ epoch: 'a', offset: 250 });
  expect(stream.accept({ epoch: 'a', offset: 250 })).toBe(false);
  expect(stream.accept({ epoch: 'a', offset: 251 })).toBe(true);
});
