import { Decoder, Encoder } from '@msgpack/msgpack';
import { MsgpackReader } from '../../src/layers/msgpack-reader';

/** What the library gives for `bytes`: its value, or the class and text of what it throws. */
function libraryResult(bytes: Uint8Array): unknown {
  try {
    return { value: new Decoder().decode(bytes) };
  } catch (error) {
    return { error: (error as Error).constructor.name, message: (error as Error).message };
  }
}

function readerResult(reader: MsgpackReader, bytes: Uint8Array): unknown {
  try {
    return { value: reader.decode(bytes) };
  } catch (error) {
    return { error: (error as Error).constructor.name, message: (error as Error).message };
  }
}

/** The reader and the library agree on `bytes`, given as a Buffer and as a plain Uint8Array. */
function expectSame(reader: MsgpackReader, bytes: Uint8Array): void {
  const asBuffer = Buffer.from(bytes);
  const asArray = new Uint8Array(bytes);
  expect(readerResult(reader, asBuffer)).toStrictEqual(libraryResult(asBuffer));
  expect(readerResult(reader, asArray)).toStrictEqual(libraryResult(asArray));
}

/** A small seeded generator, so a failure names a case that can be run again. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const STRINGS = ['', 'type', 'chat.message', 'héllo wörld', 'ça va? 🎉', '日本語のテキスト', 'x'.repeat(31), 'y'.repeat(300), 'z'.repeat(70_000), '\u00ff\u0100'];
const NUMBERS = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1, 0.5, -1.25, 1e300, Number.MIN_VALUE];

function randomValue(next: () => number, depth: number): unknown {
  const kind = Math.floor(next() * (depth > 3 ? 6 : 8));
  const pick = <T>(list: T[]): T => list[Math.floor(next() * list.length)];
  switch (kind) {
    case 0: return pick(STRINGS);
    case 1: return pick(NUMBERS);
    case 2: return pick([null, true, false]);
    case 3: return Uint8Array.from({ length: Math.floor(next() * 40) }, () => Math.floor(next() * 256));
    case 4: return `${pick(STRINGS).slice(0, 20)}${Math.floor(next() * 1000)}`;
    case 5: return Math.floor(next() * 2 ** 40) * (next() < 0.5 ? -1 : 1);
    case 6: return Array.from({ length: Math.floor(next() * 6) }, () => randomValue(next, depth + 1));
    default: {
      const map: Record<string, unknown> = {};
      const size = Math.floor(next() * 8);
      for (let i = 0; i < size; i++) map[next() < 0.8 ? pick(['type', 'message', 'payload', 'offset', 'a', 'a-much-longer-key-than-16']) + (next() < 0.3 ? i : '') : String(i)] = randomValue(next, depth + 1);
      return map;
    }
  }
}

describe('MsgpackReader', () => {
  const encoder = new Encoder();

  it('decodes what the library decodes, to the same values, for generated messages', () => {
    const reader = new MsgpackReader();
    const next = random(12345);
    for (let i = 0; i < 3000; i++) expectSame(reader, encoder.encode(randomValue(next, 0)));
  });

  it('reads types and keys of every length around the fixstr limit, and non-string types, as the library', () => {
    const reader = new MsgpackReader();
    for (const length of [0, 1, 15, 16, 17, 30, 31, 32, 33, 57, 255, 256]) {
      const name = 'n'.repeat(length);
      // Twice: the second read finds the name in the cache.
      for (let round = 0; round < 2; round++) {
        expectSame(reader, encoder.encode({ type: name, [name || 'k']: name }));
        expectSame(reader, encoder.encode({ type: 'é'.repeat(length), message: 1 }));
      }
    }
    for (const type of [null, false, true, 7, -1, 1.5, [1], { a: 1 }, Uint8Array.of(1)]) expectSame(reader, encoder.encode({ type }));
  });

  it('returns binary values as the library does: views of the input, a Buffer from a Buffer', () => {
    const bytes = Buffer.from(encoder.encode({ data: Uint8Array.of(1, 2, 3) }));
    const value = new MsgpackReader().decode(bytes) as { data: Uint8Array };
    expect(Buffer.isBuffer(value.data)).toBe(true);
    expect(value.data.buffer).toBe(bytes.buffer);
    const plain = new MsgpackReader().decode(new Uint8Array(bytes)) as { data: Uint8Array };
    expect(Buffer.isBuffer(plain.data)).toBe(false);
    expect(plain.data).toStrictEqual(Uint8Array.of(1, 2, 3));
  });

  it('agrees on every number width, including those this encoder never writes', () => {
    const reader = new MsgpackReader();
    const cases = [
      [0xca, 0x3f, 0xc0, 0x00, 0x00], // float 32: 1.5
      [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // uint 64 past 2^53
      [0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01], // int 64, most negative + 1
      [0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], // int 64: -2
      [0xd0, 0x80], [0xd1, 0x80, 0x00], [0xd2, 0x80, 0x00, 0x00, 0x00], [0xcc, 0xff], [0xcd, 0xff, 0xff], [0xce, 0xff, 0xff, 0xff, 0xff],
      [0xc4, 0x00], [0xc5, 0x00, 0x01, 0x07], [0xc6, 0x00, 0x00, 0x00, 0x01, 0x07],
      [0xd9, 0x01, 0x61], [0xda, 0x00, 0x01, 0x61], [0xdb, 0x00, 0x00, 0x00, 0x01, 0x61],
      [0xdc, 0x00, 0x01, 0xc0], [0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0], [0xde, 0x00, 0x01, 0xa1, 0x61, 0x01], [0xdf, 0x00, 0x00, 0x00, 0x01, 0xa1, 0x61, 0x01],
    ];
    for (const bytes of cases) expectSame(reader, Uint8Array.from(bytes));
  });

  it('leaves to the library what it does not read the same way, with the same result or error', () => {
    const reader = new MsgpackReader();
    const cases = [
      [0xd6, 0xff, 0x00, 0x00, 0x00, 0x01], // timestamp extension: a Date
      [0xd4, 0x05, 0x01], // another extension type
      [0xc1], // never used
      [0xa2, 0xc3, 0x28], // not UTF-8
      [0xa3, 0xed, 0xa0, 0x80], // a lone surrogate, as the library's own encoder writes one
      [0xa3, 0xef, 0xbf, 0xbd], // U+FFFD itself
      [0x81, 0xa9, ...Buffer.from('__proto__'), 0x01], // refused key
      [0x81, 0xc3, 0x01], // a boolean key
      [0x81, 0x90, 0x01], // an array key
      [0x81, 0x01, 0x02], // a number key (allowed)
      [0x81, 0xa2, 0xc3, 0x28, 0x01], // a key that is not UTF-8
      [0x92, 0x01], // truncated
      [0x01, 0x02], // extra bytes
      [0xdd, 0xff, 0xff, 0xff, 0xff], // an array bigger than the input
      [],
    ];
    for (const bytes of cases) expectSame(reader, Uint8Array.from(bytes));
  });

  it('gives the library error for every truncation of a message', () => {
    const reader = new MsgpackReader();
    const bytes = encoder.encode({ type: 'chat.message', message: 'héllo', n: 70_000, f: 0.5, list: [1, 'two', null], bin: Uint8Array.of(9) });
    for (let end = 0; end < bytes.length; end++) expectSame(reader, bytes.subarray(0, end));
  });

  it('decodes nesting deeper than it recurses through the library', () => {
    // Built by hand: the library's encoder stops at 100 levels.
    const open = Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? [0x91] : [0x81, 0xa1, 0x61])).flat();
    expectSame(new MsgpackReader(), Uint8Array.from([...open, 0xc0]));
  });

  it('reads `type` values through its cache, to what the library reads', () => {
    const reader = new MsgpackReader();
    for (let i = 0; i < 3; i++) expectSame(reader, encoder.encode({ type: 'chat.message', text: 'a' }));
    expectSame(reader, encoder.encode({ text: 'b', type: 'chat.message' }));
    // A type that is not a short string is read as any value.
    expectSame(reader, encoder.encode({ type: 7 }));
    expectSame(reader, encoder.encode({ type: 'x'.repeat(40) }));
    expectSame(reader, encoder.encode({ type: ['a'] }));
    expectSame(reader, Uint8Array.from([0x81, 0xa4, ...Buffer.from('type'), 0xa2, 0xc3, 0x28])); // not UTF-8
  });

  it('keeps map keys right past its key cache capacity, and for keys that share a prefix', () => {
    const reader = new MsgpackReader();
    for (let i = 0; i < 6000; i++) {
      const key = `k${i}`;
      expect(reader.decode(encoder.encode({ [key]: i, [`${key}x`]: -i - 1 }))).toStrictEqual({ [key]: i, [`${key}x`]: -i - 1 });
    }
    for (let i = 0; i < 6000; i += 7) expect(reader.decode(encoder.encode({ [`k${i}`]: i }))).toStrictEqual({ [`k${i}`]: i });
  });
});
