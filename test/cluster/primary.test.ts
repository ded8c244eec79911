import { restartBackoff } from '../../src/cluster/primary';

describe('restartBackoff: a crash loop slows down instead of spinning', () => {
  const options = { restartDelay: 100, maxRestartDelay: 10_000, stableAfter: 30_000 };

  test('doubles per crash in a row from 100 ms, capped at 10 s', () => {
    let crashes = 0;
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const next = restartBackoff(crashes, 50, options);
      crashes = next.crashes;
      delays.push(next.delay);
    }
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
  });

  test('a worker that lived stableAfter starts the count over', () => {
    expect(restartBackoff(7, 30_000, options)).toEqual({ crashes: 1, delay: 100 });
    expect(restartBackoff(7, 29_999, options)).toEqual({ crashes: 8, delay: 10_000 });
  });
});
