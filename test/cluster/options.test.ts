import { availableParallelism } from 'node:os';
import { parseWorkers, takeWorkersFlag } from '../../src/cluster/options';

describe('WORKERS and --workers', () => {
  test('unset or empty is 1 (no primary); auto is one per core; a positive integer is itself', () => {
    expect(parseWorkers(undefined)).toBe(1);
    expect(parseWorkers('')).toBe(1);
    expect(parseWorkers('auto')).toBe(availableParallelism());
    expect(parseWorkers('4')).toBe(4);
  });

  test.each(['abc', '0', '-2', '1.5', ' 2', '2x', 'AUTO', '99999'])('WORKERS=%j throws naming the variable, the value and the form', (value) => {
    expect(() => parseWorkers(value)).toThrow(
      `WORKERS: "${value}" is not a number of worker processes; expected a positive integer (e.g. 4) or auto (one per core)`,
    );
  });

  test('--workers wins over WORKERS and leaves the other arguments in order', () => {
    expect(takeWorkersFlag(['--workers', '3', 'routing.ts'], { WORKERS: '2' })).toEqual({ workers: 3, rest: ['routing.ts'] });
    expect(takeWorkersFlag(['routing.ts'], { WORKERS: '2' })).toEqual({ workers: 2, rest: ['routing.ts'] });
    expect(() => takeWorkersFlag(['--workers'], {})).toThrow('--workers needs a value: a positive integer or auto');
    expect(() => takeWorkersFlag(['--workers', 'x'], {})).toThrow('--workers: "x" is not a number of worker processes');
  });
});
