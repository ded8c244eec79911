// Hostile input: random and crafted bytes at the chat room's JSON consumer on a real Server, while
// healthy clients in the same room keep chatting. Fixed seed in CI; FUZZ_SEED / FUZZ_ITERATIONS for
// longer runs, e.g. `FUZZ_ITERATIONS=20000 FUZZ_SEED=7 npx jest test/fuzz.test.ts`.
//
// What the server answers (ws 8's receiver, then JsonWebsocketConsumer and the chat consumer):
//
// | input, after a completed handshake                                | answer                               |
// | ----------------------------------------------------------------- | ------------------------------------ |
// | text frame with invalid UTF-8 (also split across fragments)       | close 1007 (ws)                      |
// | text frame that is not JSON ('', '{oops', '[[[[' x 100k unclosed) | close 1007 (consumer)                |
// | JSON that is not {"message": "<string>"} (100k-deep arrays or     | {"error": ...} frame, socket stays   |
// |   objects, 1e999, a 10k-digit number, null, 42, "str", {})        |                                      |
// | {"message": "<string>", ...anything} (__proto__, constructor,     | the message, to everyone in the room |
// |   prototype keys, huge numbers beside it)                         |   and no prototype is polluted       |
// | {"__proto__": {"message": "x"}}                                   | {"error": ...}: JSON.parse makes an  |
// |                                                                   |   own key, never a prototype         |
// | binary frame (also empty)                                         | close 1003 (consumer)                |
// | ping with payload (0..125 bytes)                                  | pong with the same payload           |
// | unsolicited pong                                                  | ignored                              |
// | ping/close payload > 125 bytes, close payload of 1 byte           | close 1002                           |
// | control frame without FIN (fragmented control)                    | close 1002                           |
// | unmasked client frame                                             | close 1002                           |
// | RSV1/RSV2/RSV3 set (no extension negotiated)                      | close 1002                           |
// | reserved opcode 3-7, 0xB-0xF                                      | close 1002                           |
// | continuation with no message started; text/binary mid-message     | close 1002                           |
// | fragmented message (fragments of any size, pings in between)      | reassembled, handled as one message  |
// | more than 16,384 fragments in one message                         | close 1008 (ws maxFragments)         |
// | frame or message (sum of fragments) over maxPayload (1 MiB)       | close 1009, from the header alone    |
// | 64-bit length >= 2^53                                             | close 1009                           |
// | close frame with a valid code (1000-1003, 1007-1014, 3000-4999)   | the same code echoed                 |
// | close frame, empty                                                | close frame with no code (1005)      |
// | close code 0-999, 1004-1006, 1015-2999, 5000+                     | close 1002                           |
// | close reason that is not UTF-8                                    | close 1007                           |
// | random bytes, or a valid stream with flipped bits                 | as the model in `predict()` says:    |
// |                                                                   |   one of the above, or waits for more|
// | frames sent in the same write as the handshake request            | handled like any other frame         |
//
// | HTTP, before any upgrade                                          | answer                               |
// | ----------------------------------------------------------------- | ------------------------------------ |
// | not HTTP, bad header bytes, bad Content-Length, request w/o Host,  | 400                                  |
// |   headers over 16 KiB                                             |                                      |
// | upgrade with method POST/PUT/DELETE/PATCH                         | 400                                  |
// | Sec-WebSocket-Key missing, short, long or not base64              | 400                                  |
// | Sec-WebSocket-Version missing, 12, 14, 'abc', '13, 8'             | 400 (8 and 13 are accepted: 101)     |
// | Upgrade: h2c                                                      | 400                                  |
// | path with bad percent-encoding                                    | 400                                  |
// | no route, room name the route refuses                             | 404                                  |
// | Origin not allowed                                                | 403                                  |
// | POST to a WebSocket path without upgrade headers                  | 404                                  |
// | half a request, then silence                                      | nothing (yet); the server stays fine |
// | half a request, then FIN                                          | 400, or the socket just closes       |
// | a mutated handshake request (fuzzed)                              | 101, 400, 403, 404 or a plain close  |
// | upgrade without Host (RFC 6455 §4.2.1)                            | 400                                  |
//
// Throughout: six healthy clients in the same room send a message every 50 ms and each must
// receive every healthy message exactly once; no socket of theirs closes; afterwards /healthz is
// 200, the server holds only the healthy sockets, nothing was logged at error level and
// Object.prototype is unchanged.
import { createHash, randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import type WebSocket from 'ws';
import { application, http } from '../routing';
import { Server } from '../src';
import { openClient } from './support/sockets';

const SEED = Number(process.env.FUZZ_SEED ?? 20240917);
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 1000);
const CONCURRENCY = 8;
const ROOM_PATH = '/ws/chat/fuzz/';
const MAX_PAYLOAD = 1024 * 1024;
const MAX_FRAGMENTS = 16 * 1024;
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// ---------------------------------------------------------------------------------------------
// Seeded randomness

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** mulberry32: small, fast, good enough to pick test inputs. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Frames, as a client writes them

interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  /** RSV1..3 as bits 0x4, 0x2, 0x1. */
  rsv?: number;
  masked?: boolean;
  mask?: Buffer;
  /** The header claims this length; only the header (and mask) is written. */
  declaredLength?: number;
}

function encodeFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  const masked = spec.masked ?? true;
  const length = spec.declaredLength ?? payload.length;
  const b0 = ((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | (spec.opcode & 0x0f);
  let header: Buffer;
  if (length < 126) header = Buffer.from([b0, length]);
  else if (length < 65536) {
    header = Buffer.alloc(4);
    header[0] = b0;
    header[1] = 126;
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = b0;
    header[1] = 127;
    header.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    header.writeUInt32BE(length % 2 ** 32, 6);
  }
  if (masked) header[1] |= 0x80;
  if (spec.declaredLength !== undefined) return masked ? Buffer.concat([header, spec.mask ?? randomBytes(4)]) : header;
  if (!masked) return Buffer.concat([header, payload]);
  const mask = spec.mask ?? randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([header, mask, body]);
}

const text = (payload: Buffer | string, extra: Partial<FrameSpec> = {}) => encodeFrame({ opcode: 1, payload, ...extra });
const closeFrame = (code: number, reason: Buffer | string = '') => {
  const body = Buffer.alloc(2);
  body.writeUInt16BE(code);
  return encodeFrame({ opcode: 8, payload: Buffer.concat([body, Buffer.from(reason)]) });
};

// ---------------------------------------------------------------------------------------------
// The oracle: what ws's receiver, then the JSON and chat consumers, do with a byte stream

interface Prediction {
  /** Acceptable codes of the first close frame from the server; empty: the socket stays open. */
  closes: number[];
  /** Until the first close: pong payloads, chat messages broadcast back, {"error"} frames. */
  pongs: Buffer[];
  echoes: string[];
  errors: number;
  /** The stream stopped mid-frame (the server waits for the rest). */
  partial: boolean;
}

function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

function validUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** The chat consumer's answer to one complete text message that is valid UTF-8. */
function chatAnswer(body: string): { close?: number; echo?: string; error?: true } {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { close: 1007 };
  }
  const message = (value as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? { echo: message } : { error: true };
}

function predict(stream: Buffer): Prediction {
  const out: Prediction = { closes: [], pongs: [], echoes: [], errors: 0, partial: false };
  let consumerClose: number | null = null;
  let protocolClose: number | null = null;
  let fragmented = 0;
  let fragments: Buffer[] = [];
  let total = 0;
  let count = 0;
  let pos = 0;
  const fail = (code: number) => (protocolClose = code);
  for (;;) {
    if (stream.length - pos < 2) {
      out.partial = stream.length > pos;
      break;
    }
    const b0 = stream[pos];
    const b1 = stream[pos + 1];
    if (b0 & 0x30 || b0 & 0x40) {
      fail(1002);
      break;
    }
    const fin = (b0 & 0x80) !== 0;
    let opcode = b0 & 0x0f;
    let length = b1 & 0x7f;
    if (opcode === 0) {
      if (!fragmented) {
        fail(1002);
        break;
      }
      opcode = fragmented;
    } else if (opcode === 1 || opcode === 2) {
      if (fragmented) {
        fail(1002);
        break;
      }
    } else if (opcode >= 8 && opcode <= 10) {
      if (!fin || length > 125 || (opcode === 8 && length === 1)) {
        fail(1002);
        break;
      }
    } else {
      fail(1002);
      break;
    }
    if (!fin && !fragmented) fragmented = opcode;
    if (!(b1 & 0x80)) {
      fail(1002);
      break;
    }
    let cursor = pos + 2;
    if (length === 126) {
      if (stream.length - cursor < 2) {
        out.partial = true;
        break;
      }
      length = stream.readUInt16BE(cursor);
      cursor += 2;
    } else if (length === 127) {
      if (stream.length - cursor < 8) {
        out.partial = true;
        break;
      }
      const high = stream.readUInt32BE(cursor);
      if (high > 2 ** 21 - 1) {
        fail(1009);
        break;
      }
      length = high * 2 ** 32 + stream.readUInt32BE(cursor + 4);
      cursor += 8;
    }
    if (length && opcode < 8) {
      total += length;
      if (total > MAX_PAYLOAD) {
        fail(1009);
        break;
      }
    }
    if (stream.length - cursor < 4 + length) {
      out.partial = true;
      break;
    }
    const mask = stream.subarray(cursor, cursor + 4);
    const data = Buffer.from(stream.subarray(cursor + 4, cursor + 4 + length));
    for (let i = 0; i < data.length; i++) data[i] ^= mask[i & 3];
    pos = cursor + 4 + length;
    if (opcode === 8) {
      if (data.length === 0) fail(1005);
      else if (!validCloseCode(data.readUInt16BE(0))) fail(1002);
      else if (!validUtf8(data.subarray(2))) fail(1007);
      else fail(data.readUInt16BE(0));
      break;
    }
    if (opcode === 9) {
      if (consumerClose === null) out.pongs.push(data);
      continue;
    }
    if (opcode === 10) continue;
    if (++count > MAX_FRAGMENTS) {
      fail(1008);
      break;
    }
    if (data.length) fragments.push(data);
    if (!fin) continue;
    const message = Buffer.concat(fragments);
    const kind = opcode;
    fragments = [];
    fragmented = 0;
    total = 0;
    count = 0;
    if (kind === 2) {
      consumerClose ??= 1003;
      continue;
    }
    if (!validUtf8(message)) {
      fail(1007);
      break;
    }
    const answer = chatAnswer(message.toString());
    if (answer.close) consumerClose ??= answer.close;
    else if (consumerClose === null) {
      if (answer.echo !== undefined) out.echoes.push(answer.echo);
      else out.errors++;
    }
  }
  // A consumer-level close is asynchronous: a protocol error later in the same write may beat it.
  if (consumerClose !== null) out.closes = protocolClose === null ? [consumerClose] : [consumerClose, protocolClose];
  else if (protocolClose !== null) out.closes = [protocolClose];
  return out;
}

// ---------------------------------------------------------------------------------------------
// A raw client: the handshake by hand, then whatever bytes we like

/** Same text as the server will produce: the layer's msgpack round trip replaces lone surrogates in long strings. */
const wellFormed = (value: string) => Buffer.from(value).toString();

interface Peer {
  socket: Socket;
  /** First close frame's code (1005 for an empty one), or null. */
  closeCode: number | null;
  pongs: Buffer[];
  texts: string[];
  ended: boolean;
  /** Resolves on every change; a waiter re-checks its condition. */
  changed(timeoutMs: number): Promise<void>;
}

function handshakeRequest(path = ROOM_PATH, key = randomBytes(16).toString('base64'), extra = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
  );
}

/** Connects and completes the handshake (checking Sec-WebSocket-Accept); `early` goes in the same write. */
function openPeer(port: number, early: Buffer = Buffer.alloc(0)): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const socket = tcpConnect(port, '127.0.0.1');
    let waiters: (() => void)[] = [];
    const wake = () => {
      for (const w of waiters.splice(0)) w();
    };
    const peer: Peer = {
      socket,
      closeCode: null,
      pongs: [],
      texts: [],
      ended: false,
      changed: (timeoutMs) =>
        new Promise<void>((done) => {
          const timer = setTimeout(done, timeoutMs);
          waiters.push(() => {
            clearTimeout(timer);
            done();
          });
        }),
    };
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('handshake timed out'));
    }, 3000);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      peer.ended = true;
      clearTimeout(timer);
      if (!upgraded) reject(new Error(`closed before the handshake completed: ${buffer.toString('latin1').slice(0, 200)}`));
      wake();
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffer.subarray(0, end).toString('latin1');
        const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
        if (!head.startsWith('HTTP/1.1 101') || !head.includes(`Sec-WebSocket-Accept: ${accept}`)) {
          socket.destroy();
          return reject(new Error(`handshake refused: ${head}`));
        }
        upgraded = true;
        clearTimeout(timer);
        buffer = buffer.subarray(end + 4);
        resolve(peer);
      }
      // Server frames: never masked, never fragmented here.
      for (;;) {
        if (buffer.length < 2) break;
        let length = buffer[1] & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) break;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) break;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffer.length < offset + length) break;
        const opcode = buffer[0] & 0x0f;
        const payload = buffer.subarray(offset, offset + length);
        buffer = buffer.subarray(offset + length);
        if (opcode === 1) peer.texts.push(payload.toString());
        else if (opcode === 10) peer.pongs.push(Buffer.from(payload));
        else if (opcode === 8 && peer.closeCode === null) {
          peer.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
          // The client side of the closing handshake is not under test: drop the connection.
          socket.destroy();
        }
      }
      wake();
    });
    socket.write(Buffer.concat([Buffer.from(handshakeRequest(ROOM_PATH, key)), early]));
  });
}

async function waitUntil(peer: Peer, done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    const left = deadline - Date.now();
    if (left <= 0 || (peer.ended && !done())) return done();
    await peer.changed(left);
  }
  return true;
}

/** Writes `bytes` in `cuts.length + 1` pieces, one event-loop turn apart. */
async function writeInPieces(socket: Socket, bytes: Buffer, cuts: number[]): Promise<void> {
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
    if (socket.destroyed) return;
    socket.write(bytes.subarray(from, cut));
    from = cut;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

interface Expectation {
  close?: number[];
  pongs?: Buffer[];
  echoes?: string[];
  errors?: number;
  /** The stream ends mid-frame: nothing must come back, the server waits. */
  partial?: boolean;
}

/** Runs one stream against a fresh peer; returns a description of what went wrong, or null. */
async function runStream(port: number, bytes: Buffer, expected: Expectation, cuts: number[] = [], early = false): Promise<string | null> {
  const peer = await openPeer(port, early ? bytes : undefined);
  try {
    if (!early) await writeInPieces(peer.socket, bytes, cuts);
    if (expected.close && expected.close.length > 0) {
      await waitUntil(peer, () => peer.closeCode !== null, 5000);
      if (peer.closeCode === null) return `expected close ${expected.close.join('|')}, got ${peer.ended ? 'a dropped socket' : 'nothing'}`;
      if (!expected.close.includes(peer.closeCode)) return `expected close ${expected.close.join('|')}, got ${peer.closeCode}`;
      return null;
    }
    const echoes = (expected.echoes ?? []).map(wellFormed);
    const pongs = expected.pongs ?? [];
    const errors = expected.errors ?? 0;
    const seen = () => {
      const mine = peer.texts.map((t) => JSON.parse(t) as { message?: string; error?: string });
      const got = mine.filter((m) => typeof m.message === 'string').map((m) => wellFormed(m.message!));
      return {
        echoesOk: echoes.every((e) => got.includes(e)),
        errors: mine.filter((m) => m.error !== undefined).length,
      };
    };
    const complete = () => {
      const s = seen();
      return s.echoesOk && s.errors >= errors && peer.pongs.length >= pongs.length;
    };
    await waitUntil(peer, () => complete() || peer.closeCode !== null, 5000);
    if (peer.closeCode !== null) return `expected the socket to stay open, got close ${peer.closeCode}`;
    const s = seen();
    if (!s.echoesOk) return `missing broadcast of our message(s); got ${peer.texts.length} text frames`;
    if (s.errors !== errors) return `expected ${errors} error frames, got ${s.errors}`;
    if (peer.pongs.length !== pongs.length || pongs.some((p, i) => !p.equals(peer.pongs[i]))) {
      return `expected pongs ${pongs.map((p) => p.toString('hex')).join(',')}, got ${peer.pongs.map((p) => p.toString('hex')).join(',')}`;
    }
    if (expected.partial) {
      await peer.changed(100);
      return peer.closeCode === null ? null : `partial frame answered with close ${peer.closeCode}`;
    }
    // Still a working socket: a clean close is answered in kind.
    peer.socket.write(closeFrame(1000, 'done'));
    await waitUntil(peer, () => peer.closeCode !== null, 3000);
    return peer.closeCode === 1000 ? null : `clean close answered with ${peer.closeCode}`;
  } finally {
    peer.socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Crafted frame-level cases

const deep = (open: string, close: string, inner: string, depth: number) => open.repeat(depth) + inner + close.repeat(depth);
const tag = (name: string) => `fuzz:${name}`;

interface Crafted {
  name: string;
  bytes: Buffer;
  expect: Expectation;
  /** Send the bytes in the same write as the handshake request. */
  early?: boolean;
}

function craftedCases(): Crafted[] {
  const ping = (payload: Buffer | string, extra: Partial<FrameSpec> = {}) => encodeFrame({ opcode: 9, payload, ...extra });
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

// ---------------------------------------------------------------------------------------------
// Random streams

const NASTY_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'polluted', 'message', 'type'];

function randomString(rng: Rng): string {
  const pieces = ['a', 'é', '€', '😀', '\u0000', '\\', '"', '\ud800', '\udfff', '\u2028', 'fuzz', ' '];
  let out = '';
  const length = rng.int(12);
  for (let i = 0; i < length; i++) out += rng.pick(pieces);
  return out;
}

function randomJson(rng: Rng, depth = 0): unknown {
  const roll = rng.int(depth > 4 ? 5 : 8);
  if (roll === 0) return null;
  if (roll === 1) return rng.pick([0, -0, 1e308, -1e-308, 2 ** 53 + 1, 3.14, -42]);
  if (roll === 2) return rng.chance(0.5);
  if (roll <= 4) return randomString(rng);
  if (roll === 5) return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1));
  const object: Record<string, unknown> = {};
  for (let i = rng.int(4); i > 0; i--) Object.defineProperty(object, rng.chance(0.5) ? rng.pick(NASTY_KEYS) : randomString(rng), { value: randomJson(rng, depth + 1), enumerable: true, configurable: true, writable: true });
  return object;
}

/** A text payload: mostly JSON (often a chat message with nasty neighbours), sometimes broken. */
function randomTextPayload(rng: Rng, iteration: number): Buffer {
  const roll = rng.int(10);
  if (roll < 5) {
    const value = { message: `${tag(`r${iteration}`)}:${randomString(rng)}` } as Record<string, unknown>;
    for (let i = rng.int(3); i > 0; i--) Object.defineProperty(value, rng.pick(NASTY_KEYS.filter((k) => k !== 'message')), { value: randomJson(rng), enumerable: true, configurable: true, writable: true });
    return Buffer.from(JSON.stringify(value));
  }
  if (roll < 7) return Buffer.from(JSON.stringify(randomJson(rng)) ?? 'null');
  if (roll === 7) {
    const json = Buffer.from(JSON.stringify({ message: randomString(rng) }));
    return json.subarray(0, rng.int(json.length));
  }
  if (roll === 8) return rng.bytes(rng.int(16));
  return Buffer.from(rng.pick(['[', '{', '{"message":', '"\\ud800"', '{"message":"\\u0000"}', '1e99999', `{"message":"${'x'.repeat(rng.int(70_000))}"}`]));
}

function randomFrame(rng: Rng, iteration: number, midMessage: boolean): FrameSpec {
  const opcode = rng.chance(0.9)
    ? rng.pick(midMessage ? [0, 0, 0, 9, 10, 1] : [1, 1, 1, 1, 2, 9, 10, 8, 0])
    : rng.int(16);
  const spec: FrameSpec = { opcode, fin: opcode >= 8 ? rng.chance(0.95) : rng.chance(0.8), rsv: rng.chance(0.05) ? 1 + rng.int(7) : 0, masked: rng.chance(0.97) };
  if (opcode === 8) {
    const code = rng.pick([1000, 1001, 1003, 1005, 1006, 1011, 1015, 3000, 4999, 5000, rng.int(65536)]);
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    spec.payload = rng.chance(0.1) ? Buffer.alloc(rng.int(2)) : Buffer.concat([body, rng.chance(0.2) ? rng.bytes(rng.int(4)) : Buffer.from(randomString(rng))]);
  } else if (opcode >= 8) spec.payload = rng.bytes(rng.chance(0.9) ? rng.int(126) : 126 + rng.int(200));
  else if (opcode === 2) spec.payload = rng.bytes(rng.int(64));
  else spec.payload = randomTextPayload(rng, iteration);
  if (rng.chance(0.03)) spec.declaredLength = rng.pick([MAX_PAYLOAD + 1, 2 ** 40, 70_000, 300]);
  return spec;
}

interface RandomCase {
  bytes: Buffer;
  cuts: number[];
  kind: string;
}

function randomCase(rng: Rng, iteration: number): RandomCase {
  const roll = rng.int(20);
  let bytes: Buffer;
  let kind: string;
  if (roll < 3) {
    kind = 'garbage';
    bytes = rng.bytes(1 + rng.int(200));
  } else {
    const frames: Buffer[] = [];
    let mid = false;
    for (let i = 1 + rng.int(5); i > 0; i--) {
      const spec = randomFrame(rng, iteration, mid);
      frames.push(encodeFrame({ ...spec, mask: rng.bytes(4) }));
      if (spec.declaredLength !== undefined) break;
      if (spec.opcode === 1 || spec.opcode === 2) mid = !spec.fin;
      if (spec.opcode === 0 && spec.fin) mid = false;
    }
    bytes = Buffer.concat(frames);
    kind = 'frames';
    if (roll < 6) {
      kind = 'flipped';
      bytes = Buffer.from(bytes);
      for (let i = 1 + rng.int(3); i > 0; i--) bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
    }
  }
  const cuts = Array.from({ length: rng.int(4) }, () => rng.int(bytes.length));
  return { bytes, cuts, kind };
}

// ---------------------------------------------------------------------------------------------
// HTTP-level cases

/** Writes `request`, returns the status of the first response (null: closed with no answer, or silent till `waitMs`). */
function httpAnswer(port: number, request: string | Buffer, options: { end?: boolean; waitMs?: number } = {}): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let answer = '';
    let settled = false;
    const finish = (status: number | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => finish(null), options.waitMs ?? 3000);
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (match && answer.includes('\r\n\r\n')) finish(Number(match[1]));
    });
    socket.on('close', () => finish(/^HTTP\/1\.1 (\d{3})/.exec(answer) ? Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)![1]) : null));
    socket.write(request);
    if (options.end) socket.end();
  });
}

interface HttpCase {
  name: string;
  request: string | Buffer;
  /** Acceptable statuses; null: no answer (closed, or silent for `waitMs`). */
  expect: (number | null)[];
  end?: boolean;
  waitMs?: number;
}

function httpCases(): HttpCase[] {
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  const upgrade = (lines: string, method = 'GET', path = ROOM_PATH) => `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines}\r\n`;
  const std = (extra = '', omit: string[] = []) =>
    [
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
    ]
      .filter((line) => !omit.some((o) => line.startsWith(o)))
      .map((line) => `${line}\r\n`)
      .join('') + extra;
  const half = upgrade(std());
  return [
    { name: 'not HTTP', request: 'NOT HTTP AT ALL\r\n\r\n', expect: [400] },
    { name: 'binary garbage', request: new Rng(SEED).bytes(64), expect: [400, null], end: true, waitMs: 1000 },
    // Node applies requireHostHeader to requests, not to upgrades: isValidUpgrade() checks it.
    { name: 'upgrade without Host', request: `GET ${ROOM_PATH} HTTP/1.1\r\n${std()}\r\n`, expect: [400] },
    { name: 'request without Host', request: `GET / HTTP/1.1\r\nConnection: close\r\n\r\n`, expect: [400] },
    { name: 'NUL in a header value', request: upgrade(std('X-Bad: a\u0000b\r\n')), expect: [400] },
    { name: 'space in a header name', request: upgrade(std('Bad Header: x\r\n')), expect: [400] },
    { name: 'Content-Length: abc', request: 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', expect: [400] },
    { name: 'headers over 16 KiB', request: upgrade(std(`X-Big: ${'a'.repeat(20_000)}\r\n`)), expect: [400] },
    ...['POST', 'PUT', 'DELETE', 'PATCH'].map((method) => ({ name: `upgrade with ${method}`, request: upgrade(std('Content-Length: 0\r\n'), method), expect: [400] })),
    { name: 'no Sec-WebSocket-Key', request: upgrade(std('', ['Sec-WebSocket-Key'])), expect: [400] },
    ...['short', 'AAAAAAAAAAAAAAAAAAAAAAA=', 'AAAAAAAAAAAAAAAAAAAAAAAAAA==', '!!!!!!!!!!!!!!!!!!!!!!==', `${key} x`].map((bad) => ({
      name: `Sec-WebSocket-Key ${JSON.stringify(bad)}`,
      request: upgrade(std(`Sec-WebSocket-Key: ${bad}\r\n`, ['Sec-WebSocket-Key'])),
      expect: [400],
    })),
    { name: 'no Sec-WebSocket-Version', request: upgrade(std('', ['Sec-WebSocket-Version'])), expect: [400] },
    ...['12', '14', 'abc', '13, 8', ''].map((version) => ({
      name: `Sec-WebSocket-Version ${JSON.stringify(version)}`,
      request: upgrade(std(`Sec-WebSocket-Version: ${version}\r\n`, ['Sec-WebSocket-Version'])),
      expect: [400],
    })),
    { name: 'Sec-WebSocket-Version 8', request: upgrade(std('Sec-WebSocket-Version: 8\r\n', ['Sec-WebSocket-Version'])), expect: [101] },
    { name: 'Upgrade: h2c', request: upgrade(std('Upgrade: h2c\r\n', ['Upgrade'])), expect: [400] },
    { name: 'bad percent-encoding', request: upgrade(std(), 'GET', '/ws/chat/%E0%A4%A/'), expect: [400] },
    { name: 'no route', request: upgrade(std(), 'GET', '/ws/nowhere/'), expect: [404] },
    { name: 'room name the route refuses', request: upgrade(std(), 'GET', '/ws/chat/bad%20room!/'), expect: [404] },
    { name: 'path traversal', request: upgrade(std(), 'GET', '/ws/chat/../../etc/passwd'), expect: [404] },
    { name: 'foreign Origin', request: upgrade(std('Origin: https://evil.example\r\n')), expect: [403] },
    { name: 'POST without upgrade', request: `POST ${ROOM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, expect: [404] },
    { name: 'half a request, then silence', request: half.slice(0, Math.floor(half.length / 2)), expect: [null], waitMs: 300 },
    { name: 'half a request, then FIN', request: half.slice(0, Math.floor(half.length / 2)), expect: [400, null], end: true, waitMs: 2000 },
    { name: 'request line only, then FIN', request: `GET ${ROOM_PATH} HTTP/1.1\r\n`, expect: [400, null], end: true, waitMs: 2000 },
  ];
}

function mutatedRequest(rng: Rng): Buffer {
  const lines = handshakeRequest(ROOM_PATH, randomBytes(16).toString('base64')).split('\r\n');
  const roll = rng.int(4);
  if (roll === 0 && lines.length > 3) lines.splice(1 + rng.int(lines.length - 3), 1);
  else if (roll === 1) {
    const i = 1 + rng.int(lines.length - 3);
    lines[i] = rng.chance(0.5) ? lines[i].toUpperCase() : lines[i].replace(':', rng.pick([' :', '::', '', ': \t']));
  } else if (roll === 2) lines.splice(1 + rng.int(lines.length - 2), 0, rng.pick(['Content-Length: 5', 'Transfer-Encoding: chunked', 'Upgrade: websocket', 'Host: other', 'Origin: null', `X-${randomString(rng)}: ${randomString(rng)}`]));
  const bytes = Buffer.from(lines.join('\r\n'), 'utf8');
  if (roll === 3) for (let i = 1 + rng.int(3); i > 0; i--) bytes[rng.int(bytes.length)] = rng.int(256);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// The healthy room

interface Healthy {
  clients: WebSocket[];
  /** received[i] holds every healthy message client i got, with duplicates. */
  received: string[][];
  sent: string[];
  closed: number[];
  stop(): void;
}

async function startHealthy(base: string, count: number): Promise<Healthy> {
  const clients = await Promise.all(Array.from({ length: count }, () => openClient(`${base}${ROOM_PATH}`)));
  const healthy: Healthy = { clients, received: clients.map(() => []), sent: [], closed: [], stop: () => undefined };
  clients.forEach((ws, i) => {
    ws.on('message', (data: Buffer) => {
      const value = JSON.parse(data.toString()) as { message?: string };
      if (typeof value.message === 'string' && value.message.startsWith('healthy:')) healthy.received[i].push(value.message);
    });
    ws.on('close', (code) => healthy.closed.push(code));
  });
  let n = 0;
  const timer = setInterval(() => {
    clients.forEach((ws, i) => {
      const message = `healthy:${i}:${n}`;
      healthy.sent.push(message);
      ws.send(JSON.stringify({ message }));
    });
    n++;
  }, 50);
  healthy.stop = () => clearInterval(timer);
  return healthy;
}

// ---------------------------------------------------------------------------------------------

/** Runs `tasks` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await task(items[next++]);
    }),
  );
}

function prototypeSnapshot(): string {
  const describe = (proto: object) =>
    Reflect.ownKeys(proto)
      .map((key) => {
        const d = Object.getOwnPropertyDescriptor(proto, key)!;
        return `${String(key)}:${typeof d.value}:${typeof d.get}:${d.enumerable}`;
      })
      .sort()
      .join(',');
  return [Object.prototype, Array.prototype, Function.prototype, String.prototype].map(describe).join('|');
}

describe(`fuzz: hostile input at the chat consumer (seed ${SEED}, ${ITERATIONS} random cases)`, () => {
  let server: Server;
  let port: number;
  let healthy: Healthy;
  const logs: { level: number; msg: string }[] = [];
  const failures: string[] = [];
  const prototypesBefore = prototypeSnapshot();

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    server = new Server({ app: application, http, port: 0, logger: pino({ level: 'info' }, sink) });
    ({ port } = await server.listen());
    healthy = await startHealthy(`ws://127.0.0.1:${port}`, 6);
  });

  afterAll(async () => {
    healthy?.stop();
    for (const ws of healthy?.clients ?? []) ws.terminate();
    await server?.close();
  });

  test('crafted frames get their documented answers; the oracle agrees with each', async () => {
    const cases = craftedCases();
    for (const c of cases) {
      const model = predict(c.bytes);
      if (c.expect.close) expect({ name: c.name, closes: model.closes }).toEqual({ name: c.name, closes: c.expect.close });
      else if (c.expect.partial) expect({ name: c.name, partial: model.partial, closes: model.closes }).toEqual({ name: c.name, partial: true, closes: [] });
      else {
        expect({ name: c.name, closes: model.closes, echoes: model.echoes, errors: model.errors, pongs: model.pongs.length }).toEqual({
          name: c.name,
          closes: [],
          echoes: c.expect.echoes ?? [],
          errors: c.expect.errors ?? 0,
          pongs: (c.expect.pongs ?? []).length,
        });
      }
    }
    await pool(cases, CONCURRENCY, async (c) => {
      const problem = await runStream(port, c.bytes, c.expect, [], c.early);
      if (problem) failures.push(`crafted "${c.name}": ${problem}`);
    });
    expect(failures).toEqual([]);
  }, 60_000);

  test('random frames, bit flips and garbage get what the oracle predicts', async () => {
    const rng = new Rng(SEED);
    const cases = Array.from({ length: ITERATIONS }, (_, i) => ({ i, ...randomCase(rng, i) }));
    const kinds: Record<string, number> = {};
    const outcomes: Record<string, number> = {};
    await pool(cases, CONCURRENCY, async (c) => {
      const model = predict(c.bytes);
      kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
      const outcome = model.closes.length ? `close ${model.closes.join('|')}` : model.partial ? 'waits (partial)' : 'open';
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      const problem = await runStream(port, c.bytes, { close: model.closes, pongs: model.pongs, echoes: model.echoes, errors: model.errors, partial: model.partial }, c.cuts);
      if (problem) failures.push(`random #${c.i} (${c.kind}, seed ${SEED}, ${c.bytes.length} bytes ${c.bytes.subarray(0, 48).toString('hex')}): ${problem}`);
    });
    process.stdout.write(`fuzz seed ${SEED}: ${ITERATIONS} random cases ${JSON.stringify(kinds)}; predicted ${JSON.stringify(outcomes)}\n`);
    expect(failures.slice(0, 20)).toEqual([]);
  }, 600_000);

  test('bad and half-open HTTP gets 400/403/404 or nothing; mutated handshakes never break the server', async () => {
    const problems: string[] = [];
    await pool(httpCases(), CONCURRENCY, async (c) => {
      const status = await httpAnswer(port, c.request, { end: c.end, waitMs: c.waitMs });
      if (!c.expect.includes(status)) problems.push(`"${c.name}": expected ${c.expect.join('|')}, got ${status}`);
    });
    const rng = new Rng(SEED ^ 0x5eed);
    const mutated = Array.from({ length: Math.max(50, Math.floor(ITERATIONS / 4)) }, () => mutatedRequest(rng));
    await pool(mutated, CONCURRENCY, async (request) => {
      const status = await httpAnswer(port, request, { end: rng.chance(0.5), waitMs: 300 });
      if (![101, 400, 403, 404, null].includes(status)) problems.push(`mutated ${JSON.stringify(request.toString('latin1'))}: got ${status}`);
    });
    // A client that resets right after its upgrade request.
    for (let i = 0; i < 10; i++) {
      const socket = tcpConnect(port, '127.0.0.1', () => {
        socket.write(handshakeRequest());
        socket.resetAndDestroy();
      });
      socket.on('error', () => undefined);
    }
    expect(problems).toEqual([]);
  }, 60_000);

  test('afterwards: healthy clients got every message once, the server is up, holds only them, logged no error, prototypes intact', async () => {
    healthy.stop();
    const expected = healthy.sent.length;
    const deadline = Date.now() + 10_000;
    while (healthy.received.some((got) => got.length < expected) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const sentSorted = [...healthy.sent].sort();
    for (const [i, got] of healthy.received.entries()) {
      expect({ client: i, count: got.length }).toEqual({ client: i, count: expected });
      expect([...got].sort()).toEqual(sentSorted);
    }
    expect(expected).toBeGreaterThan(100);
    expect(healthy.closed).toEqual([]);

    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const until = Date.now() + 5000;
    while (server.connectionCount !== healthy.clients.length && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(server.connectionCount).toBe(healthy.clients.length);

    expect(logs.filter((line) => line.level >= 50)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect(prototypeSnapshot()).toBe(prototypesBefore);
    process.stdout.write(`fuzz: ${healthy.clients.length} healthy clients each got ${expected} messages; ${logs.length} log lines, none at error level\n`);
  }, 30_000);
});
