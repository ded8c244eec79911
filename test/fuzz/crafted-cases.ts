// Crafted frame-level cases, one per row of the table in test/fuzz.test.ts, each with its documented answer.
import { closeFrame, encodeFrame, ping, text } from './client-frames';
import type { Expectation } from './run-stream';
import { MAX_FRAGMENTS, MAX_PAYLOAD } from './settings';

export const deep = (open: string, close: string, inner: string, depth: number) => open.repeat(depth) + inner + close.repeat(depth);
export const tag = (name: string) => `fuzz:${name}`;

export interface Crafted {
  name: string;
  bytes: Buffer;
  expect: Expectation;
  /** Send the bytes in the same write as the handshake request. */
  early?: boolean;
}

export function craftedCases(): Crafted[] {
  const msg = (name: string) => JSON.stringify({ message: tag(name) });
  const cases: Crafted[] = [
    // invalid UTF-8
    ...[
      ['0xff', Buffer.from([0xff])],
      ['overlong', Buffer.from([0x22, 0xc0, 0x80, 0x22])],
      ['surrogate', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])],
      ['truncated', Buffer.from([0x22, 0xe2, 0x82])],
      ['above-U+10FFFF', Buffer.from([0xf4, 0x90, 0x80, 0x80])],
    ].map(([name, bytes]) => ({ name: `invalid UTF-8 ${name}`, bytes: text(bytes as Buffer), expect: { close: [1007] } })),
    {
      name: 'invalid UTF-8 split across fragments',
      bytes: Buffer.concat([text(Buffer.from('{"message":"\xe2', 'latin1'), { fin: false }), encodeFrame({ opcode: 0, payload: Buffer.from([0x28, 0x22, 0x7d]) })]),
      expect: { close: [1007] },
    },
    { name: 'empty text frame', bytes: text(''), expect: { close: [1007] } },
    { name: 'not JSON', bytes: text('{oops'), expect: { close: [1007] } },
    // nesting
    { name: '100k-deep [[[ unclosed', bytes: text('['.repeat(100_000)), expect: { close: [1007] } },
    { name: '100k-deep [[[ ]]]', bytes: text(deep('[', ']', '', 100_000)), expect: { errors: 1 } },
    { name: '100k-deep {"a":{"a":...}}', bytes: text(deep('{"a":', '}', '1', 100_000)), expect: { errors: 1 } },
    { name: 'message holding 50k-deep arrays', bytes: text(`{"message":${deep('[', ']', '"x"', 50_000)}}`), expect: { errors: 1 } },
    // numbers
    { name: 'message 1e999', bytes: text('{"message":1e999}'), expect: { errors: 1 } },
    { name: 'message 10k-digit number', bytes: text(`{"message":${'9'.repeat(10_000)}}`), expect: { errors: 1 } },
    { name: 'message -0 and 1e-400', bytes: text('{"message":-0,"x":1e-400}'), expect: { errors: 1 } },
    { name: 'huge numbers beside a message', bytes: text(`{"message":"${tag('numbers')}","a":1e999,"b":-1e999,"c":${'1'.repeat(20_000)}}`), expect: { echoes: [tag('numbers')] } },
    // prototype keys
    { name: '__proto__ beside a message', bytes: text(`{"message":"${tag('proto')}","__proto__":{"polluted":"yes","message":"p"}}`), expect: { echoes: [tag('proto')] } },
    { name: '__proto__ carrying the message', bytes: text('{"__proto__":{"message":"inherited?","polluted":"yes"}}'), expect: { errors: 1 } },
    { name: 'constructor.prototype', bytes: text(`{"message":"${tag('ctor')}","constructor":{"prototype":{"polluted":"yes"}}}`), expect: { echoes: [tag('ctor')] } },
    { name: 'message is __proto__ object', bytes: text('{"message":{"__proto__":{"polluted":"yes"}}}'), expect: { errors: 1 } },
    { name: 'message named __proto__', bytes: text(`{"message":"__proto__","prototype":{"polluted":"yes"},"type":"__proto__"}`), expect: { echoes: ['__proto__'] } },
    { name: 'nested __proto__ in an array', bytes: text(`{"message":"${tag('arr')}","list":[{"__proto__":{"polluted":"yes"}}]}`), expect: { echoes: [tag('arr')] } },
    // other JSON shapes
    ...['null', '42', '"str"', 'true', '{}', '[]', '{"message":42}', '{"message":null}', '{"message":["x"]}'].map((body) => ({
      name: `JSON ${body}`,
      bytes: text(body),
      expect: { errors: 1 },
    })),
    { name: '900 KB message', bytes: text(JSON.stringify({ message: tag('big') + 'x'.repeat(900_000) })), expect: { echoes: [tag('big') + 'x'.repeat(900_000)] } },
    { name: 'all-zero mask key', bytes: text(msg('zero-mask'), { mask: Buffer.alloc(4) }), expect: { echoes: [tag('zero-mask')] } },
    { name: 'frames in the handshake write', bytes: Buffer.concat([ping('early'), text(msg('early'))]), early: true, expect: { pongs: [Buffer.from('early')], echoes: [tag('early')] } },
    // binary
    { name: 'binary frame', bytes: encodeFrame({ opcode: 2, payload: '{"message":"hi"}' }), expect: { close: [1003] } },
    { name: 'empty binary frame', bytes: encodeFrame({ opcode: 2 }), expect: { close: [1003] } },
    { name: 'fragmented binary', bytes: Buffer.concat([encodeFrame({ opcode: 2, payload: 'ab', fin: false }), encodeFrame({ opcode: 0, payload: 'cd' })]), expect: { close: [1003] } },
    // control frames
    { name: 'ping with payload', bytes: ping('hello'), expect: { pongs: [Buffer.from('hello')] } },
    { name: 'empty ping', bytes: ping(''), expect: { pongs: [Buffer.alloc(0)] } },
    { name: 'ping of 125 bytes', bytes: ping(Buffer.alloc(125, 7)), expect: { pongs: [Buffer.alloc(125, 7)] } },
    { name: 'unsolicited pong', bytes: encodeFrame({ opcode: 10, payload: 'pong?' }), expect: {} },
    { name: 'ping of 126 bytes', bytes: ping(Buffer.alloc(126, 7)), expect: { close: [1002] } },
    { name: 'ping of 200 bytes', bytes: ping(Buffer.alloc(200, 7)), expect: { close: [1002] } },
    { name: 'ping without FIN', bytes: ping('x', { fin: false }), expect: { close: [1002] } },
    { name: 'close without FIN', bytes: encodeFrame({ opcode: 8, payload: Buffer.from([3, 232]), fin: false }), expect: { close: [1002] } },
    { name: 'pong without FIN', bytes: encodeFrame({ opcode: 10, fin: false }), expect: { close: [1002] } },
    // masking, RSV, opcodes
    { name: 'unmasked text', bytes: text(msg('unmasked'), { masked: false }), expect: { close: [1002] } },
    { name: 'unmasked ping', bytes: ping('x', { masked: false }), expect: { close: [1002] } },
    ...[4, 2, 1, 7].map((rsv) => ({ name: `RSV bits ${rsv.toString(2).padStart(3, '0')}`, bytes: text(msg('rsv'), { rsv }), expect: { close: [1002] } })),
    ...[3, 4, 5, 6, 7, 11, 12, 13, 14, 15].map((opcode) => ({ name: `reserved opcode ${opcode}`, bytes: encodeFrame({ opcode, payload: 'x' }), expect: { close: [1002] } })),
    // fragmentation
    { name: 'continuation with nothing started', bytes: encodeFrame({ opcode: 0, payload: 'x' }), expect: { close: [1002] } },
    { name: 'text in the middle of a message', bytes: Buffer.concat([text('{"mess', { fin: false }), text('age":"x"}')]), expect: { close: [1002] } },
    {
      name: 'three fragments with a ping between',
      bytes: (() => {
        const body = msg('fragments');
        return Buffer.concat([
          text(body.slice(0, 5), { fin: false }),
          ping('mid'),
          encodeFrame({ opcode: 0, payload: body.slice(5, 12), fin: false }),
          encodeFrame({ opcode: 0, payload: body.slice(12) }),
        ]);
      })(),
      expect: { pongs: [Buffer.from('mid')], echoes: [tag('fragments')] },
    },
    {
      name: 'one byte per fragment',
      bytes: (() => {
        const body = Buffer.from(msg('bytewise'));
        return Buffer.concat([...body].map((byte, i) => encodeFrame({ opcode: i === 0 ? 1 : 0, payload: Buffer.from([byte]), fin: i === body.length - 1 })));
      })(),
      expect: { echoes: [tag('bytewise')] },
    },
    {
      name: 'empty fragments around a message',
      bytes: Buffer.concat([text('', { fin: false }), encodeFrame({ opcode: 0, payload: msg('empty-frags'), fin: false }), encodeFrame({ opcode: 0 })]),
      expect: { echoes: [tag('empty-frags')] },
    },
    {
      name: `${MAX_FRAGMENTS + 1} fragments`,
      bytes: Buffer.concat([
        text('', { fin: false }),
        ...Array.from({ length: MAX_FRAGMENTS }, (_, i) => encodeFrame({ opcode: 0, fin: i === MAX_FRAGMENTS - 1, payload: ' ' })),
      ]),
      expect: { close: [1008] },
    },
    // sizes
    { name: 'text header claiming maxPayload + 1', bytes: text('', { declaredLength: MAX_PAYLOAD + 1 }), expect: { close: [1009] } },
    { name: 'binary header claiming 4 GiB', bytes: encodeFrame({ opcode: 2, declaredLength: 2 ** 32 }), expect: { close: [1009] } },
    {
      name: '64-bit length 2^53',
      bytes: Buffer.from([0x81, 0xff, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
      expect: { close: [1009] },
    },
    {
      name: '64-bit length with the top bit set',
      bytes: Buffer.from([0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4]),
      expect: { close: [1009] },
    },
    {
      name: 'two 600 KiB fragments (message over maxPayload)',
      bytes: Buffer.concat([text(Buffer.alloc(600 * 1024, 0x20), { fin: false }), encodeFrame({ opcode: 0, declaredLength: 600 * 1024 })]),
      expect: { close: [1009] },
    },
    { name: 'partial frame header, then silence', bytes: text(msg('never'), {}).subarray(0, 5), expect: { partial: true } },
    // close frames
    { name: 'close 1000 with reason', bytes: closeFrame(1000, 'bye'), expect: { close: [1000] } },
    { name: 'close 4000', bytes: closeFrame(4000), expect: { close: [4000] } },
    { name: 'close 1011', bytes: closeFrame(1011), expect: { close: [1011] } },
    { name: 'empty close', bytes: encodeFrame({ opcode: 8 }), expect: { close: [1005] } },
    { name: 'close with a 1-byte payload', bytes: encodeFrame({ opcode: 8, payload: Buffer.from([3]) }), expect: { close: [1002] } },
    ...[0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535].map((code) => ({ name: `close code ${code}`, bytes: closeFrame(code), expect: { close: [1002] } })),
    { name: 'close reason not UTF-8', bytes: closeFrame(1000, Buffer.from([0xff, 0xfe])), expect: { close: [1007] } },
    { name: 'close reason of 124 bytes', bytes: closeFrame(1000, 'r'.repeat(123)), expect: { close: [1000] } },
    // ordering: a consumer-level close first, a protocol error right behind it
    { name: 'binary then a reserved opcode', bytes: Buffer.concat([encodeFrame({ opcode: 2 }), encodeFrame({ opcode: 3 })]), expect: { close: [1003, 1002] } },
  ];
  return cases;
}
