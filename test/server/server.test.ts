import WebSocket from 'ws';
import { application, http } from '../../routing';
import { JsonWebsocketConsumer, Server, type ServerOptions, URLRouter, WebsocketConsumer, path } from '../../src';
import { openPeer, waitUntil } from '../support/raw-peer';
import { Inbox, handshakeStatus, openClient, rawExchange } from '../support/sockets';
import { stallLoop, until } from '../support/wait';

const disconnects: number[] = [];
class Tracked extends JsonWebsocketConsumer {
  override receiveJson(value: unknown): void {
    if ((value as { fail?: boolean }).fail) throw new Error('asked to fail');
    this.sendJson(value);
  }
  override async disconnect(code: number): Promise<void> {
    // A disconnect() that takes time: the server must await it.
    await new Promise((resolve) => setTimeout(resolve, 20));
    disconnects.push(code);
  }
}

class Slow extends WebsocketConsumer {
  override async connect(): Promise<void> {
    // A connect() that takes time, so a client can leave while it runs.
    await new Promise((resolve) => setTimeout(resolve, 200));
    this.accept();
  }
}

const testApp = URLRouter([path('ws/tracked/', Tracked), path('ws/slow/', Slow)]);

async function start(options: Partial<ServerOptions> = {}): Promise<{ server: Server; base: string }> {
  const server = new Server({ app: testApp, http, port: 0, heartbeatInterval: 0, ...options });
  const { port } = await server.listen();
  return { server, base: `ws://127.0.0.1:${port}` };
}

describe('Server over real sockets', () => {
  let server: Server;
  let base: string;
  const clients: WebSocket[] = [];
  const client = async (url: string, options?: WebSocket.ClientOptions) => {
    const ws = await openClient(url, options);
    clients.push(ws);
    return ws;
  };

  beforeEach(async () => ({ server, base } = await start()));
  afterEach(async () => {
    for (const ws of clients.splice(0)) ws.terminate();
    await server.close();
  });

  test('two clients in a chat room see each other\'s messages', async () => {
    await server.close();
    ({ server, base } = await start({ app: application }));
    const [a, b] = [new Inbox(await client(`${base}/ws/chat/lobby/`)), new Inbox(await client(`${base}/ws/chat/lobby/`))];
    a.ws.send(JSON.stringify({ message: 'hello from a' }));
    const frame = { message: 'hello from a', time: expect.any(Number), offset: 1, epoch: expect.any(String) };
    expect(await b.nextJson()).toEqual(frame);
    expect(await a.nextJson()).toEqual(frame);
  });

  test('handshakes: no route 404, consumer refusal 403, foreign origin 403, bad key 400', async () => {
    await server.close();
    ({ server, base } = await start({ app: application }));
    const port = server.address().port;
    expect(await handshakeStatus(`${base}/ws/nowhere/`)).toBe(404);
    expect(await handshakeStatus(`${base}/ws/notifications/`)).toBe(403);
    expect(await handshakeStatus(`${base}/ws/chat/lobby/`, { origin: 'https://evil.example' })).toBe(403);
    const answer = await rawExchange(
      port,
      'GET /ws/chat/lobby/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1.1 400/);
  });

  test('invalid JSON closes with 1007, a too-big frame with 1009, a failing handler with 1011', async () => {
    await server.close();
    ({ server, base } = await start({ maxPayload: 1024 }));
    const invalid = new Inbox(await client(`${base}/ws/tracked/`));
    invalid.ws.send('{oops');
    expect((await invalid.closed).code).toBe(1007);
    const big = new Inbox(await client(`${base}/ws/tracked/`));
    big.ws.send(JSON.stringify({ pad: 'x'.repeat(2000) }));
    expect((await big.closed).code).toBe(1009);
    const failing = new Inbox(await client(`${base}/ws/tracked/`));
    failing.ws.send(JSON.stringify({ fail: true }));
    expect((await failing.closed).code).toBe(1011);
  });

  test('the server stays up after bad clients: garbage frames, bad HTTP, resets mid-handshake', async () => {
    const port = server.address().port;
    const healthy = new Inbox(await client(`${base}/ws/tracked/`));
    expect(await rawExchange(port, 'NOT HTTP AT ALL\r\n\r\n')).toMatch(/400/);
    // An upgraded socket that then sends bytes that are not WebSocket frames (unmasked, bad opcode).
    const upgraded = await openPeer(port, '/ws/tracked/');
    upgraded.socket.write(Buffer.from([0x83, 0x05, 1, 2, 3, 4, 5]));
    await waitUntil(upgraded, () => upgraded.closeCode !== null, 2000);
    upgraded.socket.destroy();
    expect(upgraded.closeCode).toBe(1002); // protocol error, as RFC 6455 says
    // A client that resets while connect() is still running.
    const slow = new WebSocket(`${base}/ws/slow/`);
    slow.on('error', () => undefined);
    setTimeout(() => slow.terminate(), 50); // within Slow's 200 ms connect(): the timing is the case under test
    await new Promise((resolve) => slow.once('close', resolve));
    healthy.ws.send(JSON.stringify({ still: 'alive' }));
    expect(await healthy.nextJson()).toEqual({ still: 'alive' });
  });

  test('maxConnections refuses the next handshake with 503', async () => {
    await server.close();
    ({ server, base } = await start({ maxConnections: 2 }));
    await client(`${base}/ws/tracked/`);
    await client(`${base}/ws/tracked/`);
    expect(await handshakeStatus(`${base}/ws/tracked/`)).toBe(503);
  });

  test('close() sends 1001 to every client and waits for their disconnect handlers', async () => {
    disconnects.length = 0;
    const inboxes = await Promise.all([1, 2, 3].map(async () => new Inbox(await client(`${base}/ws/tracked/`))));
    await server.close();
    expect(disconnects).toEqual([1001, 1001, 1001]);
    for (const inbox of inboxes) expect((await inbox.closed).code).toBe(1001);
  });

  test('the heartbeat terminates a peer that stops answering pings', async () => {
    await server.close();
    ({ server, base } = await start({ heartbeatInterval: 100 }));
    const silent = new Inbox(await client(`${base}/ws/tracked/`, { autoPong: false }));
    const lively = new Inbox(await client(`${base}/ws/tracked/`));
    expect((await silent.closed).code).toBe(1006);
    lively.ws.send(JSON.stringify({ ok: 1 }));
    expect(await lively.nextJson()).toEqual({ ok: 1 });
  });

  test('a server loop that stalls past a heartbeat does not terminate peers whose pongs it has not read yet', async () => {
    await server.close();
    ({ server, base } = await start({ heartbeatInterval: 100 }));
    const stalled = new Inbox(await client(`${base}/ws/tracked/`));
    let pings = 0;
    stalled.ws.on('ping', () => {
      // ws has already written the pong; the server (this same process) reads it only after this
      // synchronous stall of three and a half heartbeats, when its heartbeat timer is overdue.
      if (++pings === 1) stallLoop(350);
    });
    await until(() => pings >= 4, 3000, 'four heartbeats');
    expect(stalled.ws.readyState).toBe(WebSocket.OPEN);
    stalled.ws.send(JSON.stringify({ ok: 1 }));
    expect(await stalled.nextJson()).toEqual({ ok: 1 });
  });

  test('GET /healthz is 200 with JSON; pages are served; unknown paths 404', async () => {
    const port = server.address().port;
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', layer: { state: 'up', backend: 'memory' }, pid: process.pid });
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/nothing-here`)).status).toBe(404);
  });
});
