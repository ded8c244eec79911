// capacityRule (src/layers/layer.ts): `capacity` and channels_redis's `channel_capacity` patterns.
import { LAYER_DEFAULTS, capacityRule } from '../../src/layers/layer';

describe('capacityRule', () => {
  test('without channelCapacity every channel has `capacity` (default 100)', () => {
    expect(capacityRule({})('any.name')).toBe(LAYER_DEFAULTS.capacity);
    expect(capacityRule({})('any.name')).toBe(100);
    expect(capacityRule({ capacity: 7 })('any.name')).toBe(7);
    expect(capacityRule({ capacity: 7, channelCapacity: {} })('any.name')).toBe(7);
  });

  test.each([
    // pattern, names it matches, names it does not
    ['small.*', ['small.', 'small.x', 'small.a.b', 'small.abc!def'], ['small', 'smallx', 'x.small.x']],
    ['*', ['', 'a', 'a.b!c'], []],
    ['http.response!*', ['http.response!', 'http.response!abc'], ['http.response', 'http.responseXabc']],
    ['a?c', ['abc', 'a.c', 'a!c'], ['ac', 'abbc']],
    ['job[123]', ['job1', 'job3'], ['job4', 'job', 'job12']],
    ['job[a-c]', ['joba', 'jobc'], ['jobd']],
    ['job[!123]', ['job4', 'jobx'], ['job1', 'job']],
    ['[!]x]', ['a'], [']', 'x']],
    ['[]x]', [']', 'x'], ['a']],
    ['[^x]', ['^', 'x'], ['a']],
    ['[\\d]', ['\\', 'd'], ['1']],
    ['a[b', ['a[b'], ['ab']],
    ['a.b', ['a.b'], ['axb']],
    ['a+b(c)|d^$', ['a+b(c)|d^$'], ['aab(c)', 'd']],
  ])('glob %j matches the whole name, fnmatch style', (pattern, matching, other) => {
    const rule = capacityRule({ capacity: 100, channelCapacity: { [pattern]: 3 } });
    for (const name of matching) expect([name, rule(name)]).toEqual([name, 3]);
    for (const name of other) expect([name, rule(name)]).toEqual([name, 100]);
  });

  test('RegExp rules are used as given (not anchored), and /g or /y flags do not make answers alternate', () => {
    const rule = capacityRule({ channelCapacity: [[/worker\./, 5]] });
    expect(rule('worker.thumbnails')).toBe(5);
    expect(rule('my.worker.x')).toBe(5);
    expect(rule('workers')).toBe(100);
    const sticky = capacityRule({ channelCapacity: [[/^worker\./g, 5]] });
    // Distinct names, so the cache cannot hide a RegExp's lastIndex.
    expect(['worker.a', 'worker.b', 'worker.c', 'worker.d'].map(sticky)).toEqual([5, 5, 5, 5]);
  });

  test('the first matching rule wins, in the order given', () => {
    const rule = capacityRule({ capacity: 100, channelCapacity: [['small.*', 2], [/^small/, 5], ['*', 3]] });
    expect([rule('small.x'), rule('smaller'), rule('other')]).toEqual([2, 5, 3]);
    const record = capacityRule({ capacity: 100, channelCapacity: { 'a.*': 1, '*': 9 } });
    expect([record('a.b'), record('b')]).toEqual([1, 9]);
  });

  test.each([0, -1, 1.5, Number.NaN, Infinity, '3'])('a capacity of %p throws RangeError naming the pattern', (capacity) => {
    expect(() => capacityRule({ channelCapacity: { 'bad.*': capacity as number } })).toThrow(RangeError);
    expect(() => capacityRule({ channelCapacity: { 'bad.*': capacity as number } })).toThrow(/channelCapacity bad\.\*/);
  });

  test('answers are cached per name, and the cache is bounded', () => {
    const pattern = /^cached\./;
    const test = jest.spyOn(pattern, 'test');
    const rule = capacityRule({ channelCapacity: [[pattern, 4]] });
    expect(rule('cached.a')).toBe(4);
    expect(rule('cached.a')).toBe(4);
    expect(test).toHaveBeenCalledTimes(1);
    // 10,000 other names fill the cache; it starts over rather than growing, so 'cached.a' is looked up again.
    for (let i = 0; i < 10_000; i++) rule(`other.${i}`);
    test.mockClear();
    expect(rule('cached.a')).toBe(4);
    expect(test).toHaveBeenCalledTimes(1);
  });
});
