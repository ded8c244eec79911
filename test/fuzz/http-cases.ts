// HTTP before any upgrade: malformed and refused requests with the status each must get, and mutated handshakes.
import { connect as tcpConnect } from 'node:net';
import { handshakeRequest } from '../support/raw-peer';
import { Rng } from './random';
import { randomString } from './random-cases';
import { ROOM_PATH, SEED } from './settings';

/** Writes `request`, returns the status of the first response (null: closed with no answer, or silent till `waitMs`). */
export function httpAnswer(port: number, request: string | Buffer, options: { end?: boolean; waitMs?: number } = {}): Promise<number | null> {
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

export interface HttpCase {
  name: string;
  request: string | Buffer;
  /** Acceptable statuses; null: no answer (closed, or silent for `waitMs`). */
  expect: (number | null)[];
  end?: boolean;
  waitMs?: number;
}

export function httpCases(): HttpCase[] {
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

export function mutatedRequest(rng: Rng): Buffer {
  const lines = handshakeRequest(ROOM_PATH).split('\r\n');
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
