// A raw client: the handshake by hand, then whatever bytes we like; it records what the server answers.
import { createHash, randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { closeFrame } from './client-frames';
import { ROOM_PATH } from './settings';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Same text as the server will produce: the layer's msgpack round trip replaces lone surrogates in long strings. */
export const wellFormed = (value: string) => Buffer.from(value).toString();

export interface Peer {
  socket: Socket;
  /** First close frame's code (1005 for an empty one), or null. */
  closeCode: number | null;
  pongs: Buffer[];
  texts: string[];
  ended: boolean;
  /** Resolves on every change; a waiter re-checks its condition. */
  changed(timeoutMs: number): Promise<void>;
}

export function handshakeRequest(path = ROOM_PATH, key = randomBytes(16).toString('base64'), extra = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
  );
}

/** Connects and completes the handshake (checking Sec-WebSocket-Accept); `early` goes in the same write. */
export function openPeer(port: number, early: Buffer = Buffer.alloc(0)): Promise<Peer> {
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

export async function waitUntil(peer: Peer, done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    const left = deadline - Date.now();
    if (left <= 0 || (peer.ended && !done())) return done();
    await peer.changed(left);
  }
  return true;
}

/** Writes `bytes` in `cuts.length + 1` pieces, one event-loop turn apart. */
export async function writeInPieces(socket: Socket, bytes: Buffer, cuts: number[]): Promise<void> {
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
    if (socket.destroyed) return;
    socket.write(bytes.subarray(from, cut));
    from = cut;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export interface Expectation {
  close?: number[];
  pongs?: Buffer[];
  echoes?: string[];
  errors?: number;
  /** The stream ends mid-frame: nothing must come back, the server waits. */
  partial?: boolean;
}

/** Runs one stream against a fresh peer; returns a description of what went wrong, or null. */
export async function runStream(port: number, bytes: Buffer, expected: Expectation, cuts: number[] = [], early = false): Promise<string | null> {
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
