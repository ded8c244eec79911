// permessage-deflate (RFC 7692): what the 101 answers, which frames go compressed, one compression per group
// send, and what the server does with compressed client frames (read them, bound them, refuse bad ones).
import { randomBytes } from 'node:crypto';
// The default import is the module object itself, which jest.spyOn can change (a namespace import is a copy).
import zlib from 'node:zlib';
import WebSocket from 'ws';
import { type LayerMessage, Server, type ServerOptions, WebsocketConsumer } from '../../src';
import { deflateSettings } from '../../src/server/permessage-deflate';
import { Opcode, RawClient, clientFrame } from '../support/raw-client';
import { until } from '../support/wait';

class Echo extends WebsocketConsumer {
  override receive(data: string | Buffer): void {
    this.send(data);
  }
}

/** Joins group `g` and relays each `relay` event's text. */
class Member extends WebsocketConsumer {
  override async connect(): Promise<void> {
    await this.groupAdd('g');
    this.accept();
  }

  relay(event: LayerMessage): void {
    this.send(event.text as string);
  }
}

const OFFER = 'permessage-deflate; client_max_window_bits';
const SYNC = { finishFlush: zlib.constants.Z_SYNC_FLUSH };

async function start(options: Partial<ServerOptions> = {}, consumer: typeof Echo = Echo) {
  const server = new Server({ app: async (scope, runtime) => new consumer(scope, runtime), port: 0, heartbeatInterval: 0, ...options });
  const { port } = await server.listen();
  return { server, port };
}

/** The 101's Sec-WebSocket-Extensions value ('' when absent). */
function extensionsOf(client: RawClient): string {
  const line = client.responseHead.split('\r\n').find((l) => l.toLowerCase().startsWith('sec-websocket-extensions:'));
  return line === undefined ? '' : line.slice(line.indexOf(':') + 1).trim();
}

/**
 * A client's inflate. The output is taken 64 bytes at a time, so that zlib checks every back-reference against
 * the window (within one large output buffer it lets a reference reach anywhere already written).
 */
function inflate(payload: Buffer, windowBits = 15): string {
  return zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { windowBits, chunkSize: 64, ...SYNC }).toString();
}

/** A client frame with RSV1 set around `payload` (already compressed, or not). */
function compressedFrame(payload: Buffer): Buffer {
  const frame = clientFrame(Opcode.text, payload);
  frame[0] |= 0x40;
  return frame;
}

function openWs(port: number, path = '/', options: WebSocket.ClientOptions = {}): Promise<{ ws: WebSocket; extensions: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, options);
    let extensions = '';
    ws.once('upgrade', (res) => (extensions = String(res.headers['sec-websocket-extensions'] ?? '')));
    ws.once('open', () => resolve({ ws, extensions }));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(String(data))));
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

const big = (n: number): string => JSON.stringify({ message: 'the quick brown fox jumps over the lazy dog '.repeat(Math.ceil(n / 44)).slice(0, n) });

describe('negotiation', () => {
  test('off by default: no extension in the 101 even when offered, and frames go plain', async () => {
    const { server, port } = await start();
    const client = await RawClient.open(port, '/', { extensions: OFFER });
    expect(extensionsOf(client)).toBe('');
    const text = big(4000);
    client.write(clientFrame(Opcode.text, text));
    const [frame] = await client.waitFrames(1);
    expect(frame.rsv1).toBe(false);
    expect(frame.payload.toString()).toBe(text);
    client.destroy();
    await server.close();
  });

  test('on and offered: accepted with server_no_context_takeover (and client_no_context_takeover)', async () => {
    const { server, port } = await start({ perMessageDeflate: true });
    const client = await RawClient.open(port, '/', { extensions: OFFER });
    expect(extensionsOf(client)).toBe('permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    client.destroy();
    await server.close();
  });

  test('clientNoContextTakeover: false leaves the client its context', async () => {
    const { server, port } = await start({ perMessageDeflate: { clientNoContextTakeover: false } });
    const client = await RawClient.open(port, '/', { extensions: OFFER });
    expect(extensionsOf(client)).toBe('permessage-deflate; server_no_context_takeover');
    client.destroy();
    await server.close();
  });

  test('on and not offered: no extension, frames go plain', async () => {
    const { server, port } = await start({ perMessageDeflate: { threshold: 0 } });
    const client = await RawClient.open(port, '/');
    expect(extensionsOf(client)).toBe('');
    const text = big(4000);
    client.write(clientFrame(Opcode.text, text));
    const [frame] = await client.waitFrames(1);
    expect(frame.rsv1).toBe(false);
    expect(frame.payload.toString()).toBe(text);
    client.destroy();
    await server.close();
  });

  test("the client's server_max_window_bits is honoured: a repeat farther back than the window is not referenced", async () => {
    const { server, port } = await start({ perMessageDeflate: { threshold: 0 } });
    // A 600-byte run repeated 3,000 bytes later: a 32 KiB window would reach back to it, a 1 KiB one must not.
    const run = randomBytes(300).toString('hex');
    const text = run + randomBytes(1500).toString('hex') + run;
    for (const bits of [10, 15]) {
      const client = await RawClient.open(port, '/', { extensions: `permessage-deflate; server_max_window_bits=${bits}` });
      expect(extensionsOf(client)).toBe(`permessage-deflate; server_max_window_bits=${bits}; server_no_context_takeover; client_no_context_takeover`);
      client.write(clientFrame(Opcode.text, text));
      const [frame] = await client.waitFrames(1);
      expect(frame.rsv1).toBe(true);
      expect(inflate(frame.payload, bits)).toBe(text);
      if (bits === 15) expect(() => inflate(frame.payload, 10)).toThrow(/distance too far back/);
      client.destroy();
    }
    await server.close();
  });

  test('server_max_window_bits=8 (zlib has no 8-bit raw window) still gives frames an 8-bit inflater reads', async () => {
    const { server, port } = await start({ perMessageDeflate: { threshold: 0 } });
    const client = await RawClient.open(port, '/', { extensions: 'permessage-deflate; server_max_window_bits=8' });
    expect(extensionsOf(client)).toContain('server_max_window_bits=8');
    const text = big(3000);
    client.write(clientFrame(Opcode.text, text));
    const [frame] = await client.waitFrames(1);
    expect(frame.rsv1).toBe(true);
    expect(inflate(frame.payload, 8)).toBe(text);
    client.destroy();
    await server.close();
  });

  test('an offer it cannot accept is declined (RFC 7692 §5): the next offer is taken, or none, and the socket opens', async () => {
    const { server, port } = await start({ perMessageDeflate: true });
    const bad = await RawClient.open(port, '/', { extensions: 'permessage-deflate; server_max_window_bits=7' });
    expect(extensionsOf(bad)).toBe('');
    const unknown = await RawClient.open(port, '/', { extensions: 'permessage-deflate; foo=1, permessage-deflate; client_max_window_bits' });
    expect(extensionsOf(unknown)).toBe('permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    const malformed = await RawClient.open(port, '/', { extensions: 'permessage-deflate; ;;=' });
    expect(extensionsOf(malformed)).toBe('');
    for (const client of [bad, unknown, malformed]) client.destroy();
    await server.close();
  });

  test('bad option values throw with the field named', () => {
    expect(() => deflateSettings({ level: 10 })).toThrow(/perMessageDeflate.level/);
    expect(() => deflateSettings({ threshold: -1 })).toThrow(/perMessageDeflate.threshold/);
    expect(deflateSettings(false)).toBeNull();
    expect(deflateSettings(true)).toEqual({ threshold: 1024, level: 6, memLevel: 8, clientNoContextTakeover: true });
  });
});

describe('frames to the client', () => {
  test('threshold: a payload under it goes plain, one at it goes compressed', async () => {
    const { server, port } = await start({ perMessageDeflate: { threshold: 1000 } });
    const client = await RawClient.open(port, '/', { extensions: OFFER });
    const small = 'a'.repeat(999);
    const enough = 'a'.repeat(1000);
    client.write(clientFrame(Opcode.text, small), clientFrame(Opcode.text, enough));
    const [first, second] = await client.waitFrames(2);
    expect([first.rsv1, first.payload.toString()]).toEqual([false, small]);
    expect(second.rsv1).toBe(true);
    expect(second.payload.length).toBeLessThan(50);
    expect(inflate(second.payload)).toBe(enough);
    client.destroy();
    await server.close();
  });

  test('a payload that would not shrink goes plain', async () => {
    const { server, port } = await start({ perMessageDeflate: { threshold: 0 } });
    const client = await RawClient.open(port, '/', { extensions: OFFER });
    const noise = randomBytes(2000);
    client.write(clientFrame(Opcode.binary, noise));
    const [frame] = await client.waitFrames(1);
    expect(frame.rsv1).toBe(false);
    expect(frame.payload.equals(noise)).toBe(true);
    client.destroy();
    await server.close();
  });

  test('maxOutboundFrame applies to the uncompressed size', async () => {
    const { server, port } = await start({ perMessageDeflate: { threshold: 0 }, maxOutboundFrame: 1000, maxPayload: 4000 });
    const client = await RawClient.open(port, '/', { extensions: OFFER });
    // Compresses to a few bytes, but is 2,000 bytes to the application.
    client.write(clientFrame(Opcode.text, 'a'.repeat(2000)), clientFrame(Opcode.text, 'ok'));
    const [frame] = await client.waitFrames(1);
    // Two bytes would not shrink: plain.
    expect([frame.rsv1, frame.payload.toString()]).toEqual([false, 'ok']);
    expect(server.droppedFrames.total.oversize).toBe(1);
    client.destroy();
    await server.close();
  });

  test('a group send to 60 deflate clients is compressed once, and every client reads the same text', async () => {
    const deflate = jest.spyOn(zlib, 'deflateRawSync');
    const { server, port } = await start({ perMessageDeflate: true }, Member);
    try {
      const clients = await Promise.all(Array.from({ length: 60 }, () => openWs(port, '/', { perMessageDeflate: true })));
      for (const { extensions } of clients) expect(extensions).toContain('server_no_context_takeover');
      // A plain client in the same group gets the plain frame.
      const plain = await openWs(port, '/', { perMessageDeflate: false });
      expect(plain.extensions).toBe('');
      const text = big(5000);
      const received = [...clients, plain].map(({ ws }) => nextMessage(ws));
      deflate.mockClear();
      await server.channelLayer.groupSend('g', { type: 'relay', text });
      expect(await Promise.all(received)).toEqual(Array(61).fill(text));
      expect(deflate).toHaveBeenCalledTimes(1);
      for (const { ws } of [...clients, plain]) ws.close();
      await until(() => server.connectionCount === 0);
    } finally {
      deflate.mockRestore();
      await server.close();
    }
  });

  test('two window sizes in one group: one compression per window', async () => {
    const deflate = jest.spyOn(zlib, 'deflateRawSync');
    const { server, port } = await start({ perMessageDeflate: true }, Member);
    try {
      const wide = await Promise.all(Array.from({ length: 5 }, () => openWs(port, '/', { perMessageDeflate: true })));
      const narrow = await Promise.all(Array.from({ length: 5 }, () => openWs(port, '/', { perMessageDeflate: { serverMaxWindowBits: 10 } })));
      for (const { extensions } of narrow) expect(extensions).toContain('server_max_window_bits=10');
      const text = big(8000);
      const received = [...wide, ...narrow].map(({ ws }) => nextMessage(ws));
      deflate.mockClear();
      await server.channelLayer.groupSend('g', { type: 'relay', text });
      expect(await Promise.all(received)).toEqual(Array(10).fill(text));
      expect(deflate).toHaveBeenCalledTimes(2);
      for (const { ws } of [...wide, ...narrow]) ws.close();
      await until(() => server.connectionCount === 0);
    } finally {
      deflate.mockRestore();
      await server.close();
    }
  });
});

describe('frames from the client', () => {
  test.each([true, false])('compressed client messages are read (clientNoContextTakeover %s)', async (clientNoContextTakeover) => {
    const { server, port } = await start({ perMessageDeflate: { clientNoContextTakeover } });
    const { ws } = await openWs(port, '/', { perMessageDeflate: { threshold: 0 } });
    for (const text of ['hello', big(3000), big(3000), 'é€😀 '.repeat(500)]) {
      const echoed = nextMessage(ws);
      ws.send(text);
      expect(await echoed).toBe(text);
    }
    ws.close();
    await until(() => server.connectionCount === 0);
    await server.close();
  });

  test.each([
    [true, false],
    [false, true],
  ])("clientNoContextTakeover %s: ws's inflate state for the socket is kept: %s", async (clientNoContextTakeover, kept) => {
    const { server, port } = await start({ perMessageDeflate: { clientNoContextTakeover } });
    const { ws } = await openWs(port, '/', { perMessageDeflate: { threshold: 0 } });
    const echoed = nextMessage(ws);
    ws.send(big(2000));
    await echoed;
    // The one socket's extension object, as ws holds it (what bench/inflate-memory.ts measures).
    const [transport] = (server as unknown as { live: Set<{ ws: { _extensions: Record<string, { _inflate: unknown }> } }> }).live;
    expect(transport.ws._extensions['permessage-deflate']._inflate !== null).toBe(kept);
    ws.close();
    await until(() => server.connectionCount === 0);
    await server.close();
  });

  test('a message whose inflated size is over maxPayload closes with 1009 (zip bomb)', async () => {
    const { server, port } = await start({ perMessageDeflate: true, maxPayload: 64 * 1024 });
    const client = await RawClient.open(port, '/', { extensions: OFFER });
    // 1 MiB of zeros is ~1 KiB compressed: small on the wire, 16 times maxPayload inflated.
    const bomb = zlib.deflateRawSync(Buffer.alloc(1024 * 1024), SYNC);
    expect(bomb.length).toBeLessThan(4096);
    client.write(compressedFrame(bomb.subarray(0, bomb.length - 4)));
    expect(await client.closeCode()).toBe(1009);
    await client.ended;
    await server.close();
  });

  test('a compressed frame that does not inflate closes with 1007', async () => {
    const { server, port } = await start({ perMessageDeflate: true });
    const client = await RawClient.open(port, '/', { extensions: OFFER });
    // BTYPE 11 is reserved: invalid DEFLATE data.
    client.write(compressedFrame(Buffer.from([0xff, 0xff, 0xff, 0xff])));
    expect(await client.closeCode()).toBe(1007);
    await client.ended;
    await server.close();
  });

  test('RSV1 without the extension negotiated closes with 1002', async () => {
    const { server, port } = await start({ perMessageDeflate: true });
    const client = await RawClient.open(port, '/');
    client.write(compressedFrame(zlib.deflateRawSync(Buffer.from('hi'), SYNC).subarray(0, -4)));
    expect(await client.closeCode()).toBe(1002);
    await client.ended;
    await server.close();
  });
});
