import { connect as tcpConnect, type Socket } from 'node:net';
import pino from 'pino';
import { InMemoryChannelLayer, type LayerMessage, Server, type ServerOptions, URLRouter, WebsocketConsumer, path } from '../../src';
import { WebsocketCommunicator } from '../../src/testing';
import { ConnectionRateLimiter } from '../../src/server/rate-limit';
import { Opcode, RawClient, clientFrame } from '../support/raw-client';
import { handshakeStatus, openClient } from '../support/sockets';
import { poll, until } from '../support/wait';

const closes: number[] = [];
class Member extends WebsocketConsumer {
  static override groups = ['all'];
  relay(event: LayerMessage): void {
    this.send(event.payload as string);
  }
  override receive(data: string | Buffer): void {
    this.send(data);
  }
  override disconnect(code: number): void {
    closes.push(code);
  }
}

const app = URLRouter([path('ws/member/', Member)]);

async function start(options: Partial<ServerOptions> = {}) {
  const server = new Server({ app, port: 0, heartbeatInterval: 0, ...options });
  const { port } = await server.listen();
  return { server, port, base: `ws://127.0.0.1:${port}` };
}

/** A client that completes the handshake, then never reads again: its TCP window fills. */
function stalledClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1', () => {
      socket.write(
        'GET /ws/member/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    socket.once('data', (chunk) => {
      if (!chunk.toString().startsWith('HTTP/1.1 101')) return reject(new Error(chunk.toString()));
      socket.pause();
      resolve(socket);
    });
    socket.on('error', () => undefined);
  });
}

describe('slow readers', () => {
  test('a stalled client is closed; 200 healthy clients in its group get all 20,000 messages', async () => {
    closes.length = 0;
    const { server, port, base } = await start({ maxBufferedBytes: 1024 * 1024 });
    const stalled = await stalledClient(port);
    const healthy = await Promise.all(Array.from({ length: 200 }, () => openClient(`${base}/ws/member/`)));
    const received = new Array<number>(healthy.length).fill(0);
    healthy.forEach((ws, i) => ws.on('message', () => received[i]++));
    const rssBefore = process.memoryUsage().rss;
    let maxRss = rssBefore;
    const payload = 'x'.repeat(500);
    const total = 20_000;
    let sent = 0;
    while (sent < total) {
      // The test's publisher keeps pace with the healthy readers, as a real flow-controlled one would.
      if (sent - Math.min(...received) < 400) {
        for (let i = 0; i < 50 && sent < total; i++, sent++) await server.channelLayer.groupSend('all', { type: 'relay', payload });
      }
      await new Promise((resolve) => setImmediate(resolve));
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
    }
    await poll(() => Math.min(...received) >= total, 30_000, 10);
    expect(received.every((count) => count === total)).toBe(true);
    // The stalled one went away: 1013 sent, then dropped after the grace period since it never read it.
    await until(() => server.connectionCount <= healthy.length, 30_000, 'the stalled socket dropped', 50);
    expect(closes.length).toBe(1);
    const growthMiB = (maxRss - rssBefore) / 2 ** 20;
    // Without the limit the stalled socket alone would queue ~10 MB; the bound leaves room for 200 clients' buffers.
    expect(growthMiB).toBeLessThan(200);
    process.stdout.write(`slow-reader test: peak RSS growth ${growthMiB.toFixed(1)} MiB\n`);
    stalled.destroy();
    for (const ws of healthy) ws.terminate();
    await server.close();
  }, 60_000);
});

describe('floods', () => {
  test('a client past the frame rate is closed with 1008; one within it is not', async () => {
    const { server, base } = await start({ rateLimit: { framesPerSecond: 50, frameBurst: 100 } });
    const flooder = await openClient(`${base}/ws/member/`);
    const polite = await openClient(`${base}/ws/member/`);
    const flooderClosed = new Promise<number>((resolve) => flooder.once('close', resolve));
    for (let i = 0; i < 500; i++) flooder.send('spam');
    expect(await flooderClosed).toBe(1008);
    const echoed = new Promise((resolve) => polite.once('message', (data) => resolve(data.toString())));
    polite.send('hello');
    expect(await echoed).toBe('hello');
    polite.terminate();
    await server.close();
  });

  test('a client past the byte rate is closed with 1008', async () => {
    const { server, base } = await start({ rateLimit: { bytesPerSecond: 10_000, byteBurst: 20_000 } });
    const flooder = await openClient(`${base}/ws/member/`);
    const closed = new Promise<number>((resolve) => flooder.once('close', resolve));
    for (let i = 0; i < 10; i++) flooder.send('y'.repeat(5_000));
    expect(await closed).toBe(1008);
    await server.close();
  });

  test('maxConnectionsPerAddress refuses the next handshake from that address with 429, until one leaves', async () => {
    const { server, base } = await start({ maxConnectionsPerAddress: 2 });
    const first = await openClient(`${base}/ws/member/`);
    const second = await openClient(`${base}/ws/member/`);
    expect(await handshakeStatus(`${base}/ws/member/`)).toBe(429);
    const gone = new Promise((resolve) => first.once('close', resolve));
    first.close();
    await gone;
    // The server sees the socket end shortly after the client does.
    let status = 0;
    await poll(async () => (status = await handshakeStatus(`${base}/ws/member/`)) === 101, 2000);
    expect(status).toBe(101);
    second.terminate();
    await server.close();
  });

  test('a full consumer mailbox makes the layer treat its channel as full: ChannelFull to senders, skipped by group sends', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let handled = 0;
    class Stuck extends WebsocketConsumer {
      static override mailboxCapacity = 5;
      static override groups = ['stuck'];
      override connect(): void {
        this.accept();
        this.send(this.channelName);
      }
      async job(): Promise<void> {
        await gate;
        handled++;
      }
    }
    const layer = new InMemoryChannelLayer();
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/stuck/', Stuck)]), '/ws/stuck/', { channelLayer: layer });
    await communicator.connect();
    const channel = (await communicator.receiveFrom()) as string;
    // One job in progress, five waiting: the mailbox is full.
    for (let i = 0; i < 6; i++) await layer.send(channel, { type: 'job' });
    await expect(layer.send(channel, { type: 'job' })).rejects.toMatchObject({ code: 'CHANNEL_FULL' });
    await expect(layer.groupSend('stuck', { type: 'job' })).resolves.toBeUndefined();
    release();
    await communicator.disconnect();
    expect(handled).toBe(6);
    await layer.close();
  });
});

/**
 * Writes `frame` `batch` at a time, every `everyMs` (every turn when 0), until the server ends the
 * connection; resolves then.
 */
async function flood(client: RawClient, frame: Buffer, batch = 500, everyMs = 0): Promise<void> {
  const frames = Buffer.concat(Array.from({ length: batch }, () => frame));
  let ended = false;
  void client.ended.then(() => (ended = true));
  const deadline = Date.now() + 10_000;
  while (!ended && Date.now() < deadline) {
    if (client.socket.writableLength < 1024 * 1024) client.socket.write(frames);
    await new Promise((resolve) => (everyMs === 0 ? setImmediate(resolve) : setTimeout(resolve, everyMs)));
  }
  if (!ended) throw new Error('the server did not end a flooding connection within 10 s');
}

describe("slowReaderPolicy 'drop'", () => {
  test('frames to a stalled reader past maxBufferedBytes are dropped, counted and logged once; the socket stays open', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const { server, port } = await start({ maxBufferedBytes: 64 * 1024, slowReaderPolicy: 'drop', logger });
    const stalled = await stalledClient(port);
    const payload = 'x'.repeat(10_000);
    // Far more than the kernel's buffers and the mark together can take from a reader that never reads.
    for (let i = 0; i < 2000; i++) {
      await server.channelLayer.groupSend('all', { type: 'relay', payload });
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => server.droppedFrames.total.slowReader > 0, 5000, 'a frame dropped for the slow reader');
    expect(server.connectionCount).toBe(1);
    const warnings = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => 'maxBufferedBytes' in entry);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ maxBufferedBytes: 64 * 1024, path: '/ws/member/' });
    stalled.destroy();
    await server.close();
  });
});

describe('outbound frame cap', () => {
  test('a frame over maxOutboundFrame is dropped for every member, logged once with the count; the sockets stay open', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const { server, base } = await start({ maxOutboundFrame: 1000, logger });
    const members = await Promise.all([0, 1, 2].map(() => openClient(`${base}/ws/member/`)));
    const received = members.map(() => [] as string[]);
    members.forEach((ws, i) => ws.on('message', (data) => received[i].push(data.toString())));
    await server.channelLayer.groupSend('all', { type: 'relay', payload: 'x'.repeat(1001) });
    await server.channelLayer.groupSend('all', { type: 'relay', payload: 'y'.repeat(1000) });
    await until(() => received.every((frames) => frames.length > 0), 5000, 'the frame at the cap');
    expect(received).toEqual(members.map(() => ['y'.repeat(1000)]));
    const warnings = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.maxOutboundFrame);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ bytes: 1001, maxOutboundFrame: 1000 });
    expect(JSON.stringify(warnings)).not.toContain('xxxx');
    // Multi-byte text counts in UTF-8 bytes: 400 'é' are 800 bytes, 600 are 1,200.
    await server.channelLayer.groupSend('all', { type: 'relay', payload: 'é'.repeat(600) });
    await server.channelLayer.groupSend('all', { type: 'relay', payload: 'é'.repeat(400) });
    await until(() => received.every((frames) => frames.length > 1), 5000, 'the multi-byte frame under the cap');
    expect(received[0]).toEqual(['y'.repeat(1000), 'é'.repeat(400)]);
    expect(server.connectionCount).toBe(3);
    for (const ws of members) ws.terminate();
    await server.close();
  });

  test('maxOutboundFrame defaults to 4 MiB, or maxPayload when that is larger', async () => {
    const { server, base } = await start({ maxPayload: 8 * 1024 * 1024, rateLimit: false });
    const client = await openClient(`${base}/ws/member/`, { maxPayload: 16 * 1024 * 1024 });
    const echoed = new Promise<number>((resolve) => client.once('message', (data: Buffer) => resolve(data.length)));
    client.send(Buffer.alloc(6 * 1024 * 1024));
    expect(await echoed).toBe(6 * 1024 * 1024);
    client.terminate();
    await server.close();
  });
});

describe('control frame floods', () => {
  test('a client sending pongs in a tight loop is closed with 1008 and its socket ends', async () => {
    const { server, port } = await start();
    const client = await RawClient.open(port, '/ws/member/');
    await flood(client, clientFrame(Opcode.pong, 'x'));
    expect(client.frames.find((frame) => frame.opcode === Opcode.close)?.code).toBe(1008);
    await until(() => server.connectionCount === 0, 5000, 'the server to forget the flooder');
    await server.close();
  });

  test('a client sending 500 pings/s is closed with 1008 and its socket ends', async () => {
    // Ten per write: ws itself drops a client with 60 answers pending, which a bigger batch would hit first.
    const { server, port } = await start();
    const client = await RawClient.open(port, '/ws/member/');
    await flood(client, clientFrame(Opcode.ping, 'x'), 10, 20);
    expect(client.frames.find((frame) => frame.opcode === Opcode.close)?.code).toBe(1008);
    await until(() => server.connectionCount === 0, 5000, 'the server to forget the flooder');
    await server.close();
  });

  test('a pong flooder that never completes the close is dropped after a short grace', async () => {
    const { server, port } = await start();
    const client = await RawClient.open(port, '/ws/member/', { answerClose: false });
    const started = Date.now();
    await flood(client, clientFrame(Opcode.pong, 'x'));
    expect(Date.now() - started).toBeLessThan(5000);
    await until(() => server.connectionCount === 0, 5000, 'the server to forget the flooder');
    await server.close();
  });

  test('a client pinging once a second is not closed', async () => {
    const { server, base } = await start();
    const client = await openClient(`${base}/ws/member/`);
    let closed = false;
    client.once('close', () => (closed = true));
    for (let i = 0; i < 3; i++) {
      const pong = new Promise((resolve) => client.once('pong', resolve));
      client.ping();
      await pong;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const echoed = new Promise((resolve) => client.once('message', (data) => resolve(data.toString())));
    client.send('still here');
    expect(await echoed).toBe('still here');
    expect(closed).toBe(false);
    client.terminate();
    await server.close();
  });
});

describe('ConnectionRateLimiter', () => {
  const limit = { framesPerSecond: 10, frameBurst: 5, bytesPerSecond: 1000, byteBurst: 2000 };

  test('allows a burst of frames, refuses past it, and refills at the rate, not beyond the burst', () => {
    const limiter = new ConnectionRateLimiter(limit, 0);
    for (let i = 0; i < 5; i++) expect(limiter.allow(1, 0)).toBe(true);
    expect(limiter.allow(1, 0)).toBe(false);
    expect(limiter.allow(1, 100)).toBe(true); // 100 ms at 10/s is one frame
    expect(limiter.allow(1, 100)).toBe(false);
    for (let i = 0; i < 5; i++) expect(limiter.allow(1, 10_000)).toBe(true);
    expect(limiter.allow(1, 10_000)).toBe(false);
  });

  test('bytes are limited on their own, and a refused frame takes nothing', () => {
    const limiter = new ConnectionRateLimiter(limit, 0);
    expect(limiter.allow(1500, 0)).toBe(true);
    expect(limiter.allow(600, 0)).toBe(false);
    expect(limiter.allow(500, 0)).toBe(true); // the refused 600 did not spend bytes or a frame
    expect(limiter.allow(1, 0)).toBe(false);
    expect(limiter.allow(1, 1)).toBe(true); // 1 ms refills one byte
  });
});
