// The reconnect rules on their own: full-jitter bounds and which close codes end the client.
import { backoffDelay, isRetryable } from '../../src/client';

test('the delay is uniform under min(maxDelay, initialDelay * 2^failures)', () => {
  const almostOne = 1 - Number.EPSILON;
  expect([0, 1, 2, 3, 4, 5].map((failures) => backoffDelay(failures, 500, 10_000, () => almostOne))).toEqual([499, 999, 1999, 3999, 7999, 9999]);
  expect(backoffDelay(3, 500, 10_000, () => 0)).toBe(0);
  expect(backoffDelay(10_000, 500, 10_000, () => 0.5)).toBe(5000); // no overflow to Infinity or NaN
});

test('final: 1000, 1003, 1008 and the application range 4000-4999; everything else is retried', () => {
  expect([1000, 1003, 1008, 4000, 4003, 4999].filter(isRetryable)).toEqual([]);
  expect([1001, 1005, 1006, 1007, 1009, 1011, 1012, 1013, 1014, 1015, 3000, 3999].every(isRetryable)).toBe(true);
});
