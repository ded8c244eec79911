// A raw WebSocket client over TCP: the handshake by hand (checking Sec-WebSocket-Accept), then whatever bytes a test
// likes, valid frames or not; it records the server's text frames, pongs and first close code.
import { createHash, randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

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

export function handshakeRequest(path: string, key = randomBytes(16).toString('base64'), extra = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
  );
}

/** Connects to `path` and completes the handshake; `early` goes in the same write as the request. */
export function openPeer(port: number, path: string, early: Buffer = Buffer.alloc(0)): Promise<Peer> {
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
    socket.write(Buffer.concat([Buffer.from(handshakeRequest(path, key)), early]));
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

