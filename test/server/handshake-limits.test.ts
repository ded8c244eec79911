// Hostile and unlucky TCP clients at the HTTP stage: refused handshakes that are never read, requests that
// never finish their headers, floods of unfinished connections. None may hold a file descriptor for long
// or lock legitimate clients out.
import { connect as tcpConnect, type Socket } from 'node:net';
import { Server, type ServerOptions, URLRouter, WebsocketConsumer, path } from '../../src';
import { Inbox, openClient } from '../support/sockets';
import { until } from '../support/wait';

class Echo extends WebsocketConsumer {
  override receive(data: string | Buffer): void {
    this.send(data);
  }
}

const app = URLRouter([path('ws/echo/', Echo)]);

const upgrade = (target: string, key = 'dGhlIHNhbXBsZSBub25jZQ==') =>
  `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

interface RawClient {
  socket: Socket;
  /** Bytes received (only for clients that read). */
  received: () => string;
  closed: Promise<void>;
  isClosed: () => boolean;
}

/** A TCP client that sends `payload` (maybe nothing) and then either reads or never reads again. */
function rawClient(port: number, payload: string, reads: boolean, localAddress?: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ port, host: '127.0.0.1', localAddress });
    let received = '';
    let isClosed = false;
    const closed = new Promise<void>((done) =>
      socket.once('close', () => {
        isClosed = true;
        done();
      }),
    );
    socket.on('error', () => undefined);
    if (reads) socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    else socket.pause();
    socket.once('connect', () => {
      if (payload) socket.write(payload);
      resolve({ socket, received: () => received, closed, isClosed: () => isClosed });
    });
    socket.once('error', reject);
  });
}

/**
 * Waits until pending connections count as stalled rather than a burst: min(1 s, headersTimeout / 2).
 * Time passing is the condition here, so this is a sleep.
 */
function stalled(headersTimeout: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.min(1000, headersTimeout / 2) + 50));
}

async function start(options: Partial<ServerOptions> = {}) {
  const server = new Server({ app, port: 0, heartbeatInterval: 0, ...options });
  const { port } = await server.listen();
  return { server, port, base: `ws://127.0.0.1:${port}` };
}

describe('unfinished and refused handshakes', () => {
  let server: Server;
  const raw: Socket[] = [];
  const clients: { terminate(): void }[] = [];
  afterEach(async () => {
    for (const socket of raw.splice(0)) socket.destroy();
    for (const ws of clients.splice(0)) ws.terminate();
    await server.close();
  });

  test('300 clients that send a refused handshake and never read are destroyed within seconds', async () => {
    // 300: enough to see a leak, far under the 20,000-descriptor limit of this machine.
    let port: number;
    let base: string;
    ({ server, port, base } = await start({ maxPendingHandshakesPerAddress: 1000 }));
    const healthy = new Inbox(await openClient(`${base}/ws/echo/`));
    clients.push(healthy.ws);
    const payloads = [
      upgrade('/ws/nowhere/'), // no route: 404
      upgrade('/ws/echo/', 'short'), // bad key: 400
      'NOT HTTP AT ALL\r\n\r\n', // bad HTTP: clientError, 400
    ];
    for (let i = 0; i < 300; i++) raw.push((await rawClient(port, payloads[i % 3], false)).socket);
    await until(async () => (await server.socketCount()) === 1, 5000, 'refused sockets destroyed');
    healthy.ws.send('still here');
    expect(await healthy.next()).toBe('still here');
  });

  test('clients that never finish their request headers are closed after headersTimeout', async () => {
    let port: number;
    ({ server, port } = await start({ headersTimeout: 500 }));
    const slow = await Promise.all([
      rawClient(port, 'GET /ws/ec', true), // half a request line
      rawClient(port, upgrade('/ws/echo/').slice(0, 60), true), // half the headers
      rawClient(port, '', true), // nothing at all
      rawClient(port, 'GET /ws/ec', false), // half a request line, and it never reads either
    ]);
    raw.push(...slow.map((client) => client.socket));
    await until(async () => (await server.socketCount()) === 4, 2000, 'connections accepted');
    await until(async () => (await server.socketCount()) === 0, 5000, 'unfinished requests closed');
    await Promise.all(slow.slice(0, 3).map((client) => client.closed));
    expect(slow[0].received()).toMatch(/^HTTP\/1.1 408 /);
  });

  test('past maxPendingHandshakes a new unfinished connection is dropped at once; open sockets carry on', async () => {
    let port: number;
    let base: string;
    ({ server, port, base } = await start({ maxPendingHandshakes: 20, headersTimeout: 1500 }));
    const open = new Inbox(await openClient(`${base}/ws/echo/`));
    clients.push(open.ws);
    const slow = await Promise.all(Array.from({ length: 20 }, () => rawClient(port, 'GET /ws/ec', true)));
    raw.push(...slow.map((client) => client.socket));
    await until(async () => (await server.socketCount()) === 21, 2000, 'slow connections counted');
    await stalled(1500);
    const extra = await rawClient(port, 'GET /ws/ec', true);
    raw.push(extra.socket);
    await extra.closed;
    // Dropped before any slow one timed out, without an answer.
    expect(slow.some((client) => client.isClosed())).toBe(false);
    expect(extra.received()).toBe('');
    open.ws.send('during');
    expect(await open.next()).toBe('during');
    // Once the slow ones are gone, new clients get in.
    await Promise.all(slow.map((client) => client.closed));
    await until(async () => (await server.socketCount()) === 1, 3000, 'slow connections gone on the server too');
    const fresh = new Inbox(await openClient(`${base}/ws/echo/`));
    clients.push(fresh.ws);
    fresh.ws.send('after');
    expect(await fresh.next()).toBe('after');
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  test('past maxPendingHandshakesPerAddress only that address is dropped', async () => {
    let port: number;
    ({ server, port } = await start({ maxPendingHandshakesPerAddress: 10, headersTimeout: 3000 }));
    const slow = await Promise.all(Array.from({ length: 10 }, () => rawClient(port, 'GET /ws/ec', true, '127.0.0.1')));
    raw.push(...slow.map((client) => client.socket));
    await until(async () => (await server.socketCount()) === 10, 2000, 'slow connections counted');
    await stalled(3000);
    const extra = await rawClient(port, 'GET /ws/ec', true, '127.0.0.1');
    raw.push(extra.socket);
    await extra.closed;
    expect(extra.received()).toBe('');
    // Another address is not held back by this one.
    const other = await rawClient(port, upgrade('/ws/echo/'), true, '127.0.0.2');
    raw.push(other.socket);
    await until(() => other.received().startsWith('HTTP/1.1 101'), 2000, 'handshake from another address');
    expect(slow.some((client) => client.isClosed())).toBe(false);
  });

  test('a burst of connections whose headers come a moment later is let in, past the per-address limit', async () => {
    let port: number;
    ({ server, port } = await start({ maxPendingHandshakesPerAddress: 20, maxPendingHandshakes: 50 }));
    // 150 connections accepted together (as a proxy or a reconnect storm opens them), headers a moment later.
    const burst = await Promise.all(Array.from({ length: 150 }, () => rawClient(port, '', true)));
    raw.push(...burst.map((client) => client.socket));
    await until(async () => (await server.socketCount()) === 150, 2000, 'burst accepted');
    for (const client of burst) client.socket.write(upgrade('/ws/echo/'));
    await until(() => burst.every((client) => client.received().startsWith('HTTP/1.1 101')), 5000, 'every handshake of the burst');
  });

  test('finished handshakes and HTTP requests release their pending slot', async () => {
    let port: number;
    let base: string;
    ({ server, port, base } = await start({ maxPendingHandshakes: 3, maxPendingHandshakesPerAddress: 3 }));
    for (let i = 0; i < 20; i++) {
      const ws = await openClient(`${base}/ws/echo/`);
      clients.push(ws);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    }
    for (let i = 0; i < 10; i++) {
      const refused = await rawClient(port, upgrade('/ws/nowhere/'), true);
      await refused.closed;
      expect(refused.received()).toMatch(/^HTTP\/1.1 404/);
    }
  });
});
