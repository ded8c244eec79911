import * as ws from 'ws';
import { FrameCache, encodeFrame, payloadLength } from '../../src/server/protocol';

// ws exports its Receiver at runtime but not in its type declarations.
interface FrameReceiver {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  write(chunk: Buffer, encoding: string, callback: (error?: Error | null) => void): void;
}
const { Receiver } = ws as unknown as { Receiver: new (options: { isServer: boolean }) => FrameReceiver };

/** Decodes frames with ws's own receiver, acting as the client side. */
function decode(frames: Buffer): Promise<{ data: Buffer; isBinary: boolean }[]> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false });
    const out: { data: Buffer; isBinary: boolean }[] = [];
    receiver.on('message', (data: Buffer, isBinary: boolean) => out.push({ data, isBinary }));
    receiver.on('error', reject);
    receiver.write(frames, 'buffer', (error) => (error ? reject(error) : resolve(out)));
  });
}

describe('encodeFrame', () => {
  test.each([0, 1, 125, 126, 127, 65_535, 65_536, 200_000])('a %i-byte text payload decodes intact', async (size) => {
    const text = 'é'.repeat(Math.floor(size / 2)) + 'x'.repeat(size % 2);
    const [message] = await decode(encodeFrame(text));
    expect(message.isBinary).toBe(false);
    expect(message.data.toString()).toBe(text);
  });

  test('binary payloads keep their bytes and opcode', async () => {
    const bytes = Buffer.from([0, 255, 1, 254]);
    expect(await decode(encodeFrame(bytes))).toEqual([{ data: bytes, isBinary: true }]);
  });

  test('consecutive frames decode in order', async () => {
    const messages = await decode(Buffer.concat([encodeFrame('a'), encodeFrame('b'.repeat(300)), encodeFrame('c')]));
    expect(messages.map((m) => m.data.toString()[0])).toEqual(['a', 'b', 'c']);
  });
});

describe('FrameCache', () => {
  test('returns the same frame for the same string and a new one for another', () => {
    const cache = new FrameCache();
    const first = cache.frame('{"message":"hi"}');
    expect(cache.frame('{"message":"hi"}')).toBe(first);
    expect(cache.frame('{"message":"bye"}')).not.toBe(first);
  });

  test('never reuses a frame for a Buffer, whose owner may change it', () => {
    const cache = new FrameCache();
    const bytes = Buffer.from('abc');
    const first = cache.frame(bytes);
    bytes[0] = 0x7a;
    expect(cache.frame(bytes).subarray(2).toString()).toBe('zbc');
    expect(first.subarray(2).toString()).toBe('abc');
  });
});

describe('payloadLength', () => {
  test.each([0, 125, 126, 65_535, 65_536, 100_000])('reads back the payload size of a %i-byte frame', (size) => {
    expect(payloadLength(encodeFrame(Buffer.alloc(size)))).toBe(size);
  });
});
