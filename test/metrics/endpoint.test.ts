// GET /metrics after known traffic: exact counts of connections, handshakes, frames, group sends, deliveries, drops.
import { connect as tcpConnect, type Socket } from 'node:net';
import { type LayerMessage, Server, type ServerOptions, URLRouter, WebsocketConsumer, createLogger, path } from '../../src';
import { createDemo } from '../../routing';
import { sample, samples, scrape } from '../support/metrics';
import { Inbox, handshakeStatus, openClient, openInbox } from '../support/sockets';
import { until } from '../support/wait';

/** Joins `room`; a client frame is group-sent to the room, and every member relays it to its client. */
class Room extends WebsocketConsumer {
  static override groups = ['room'];
  override receive(data: string | Buffer): Promise<void> {
    return this.groupSend('room', { type: 'room.message', text: String(data) });
  }
  roomMessage(event: LayerMessage): void {
    this.send(event.text as string);
  }
}

/** Refuses every handshake (HTTP 403). */
class Refuse extends WebsocketConsumer {
  override connect(): void {
    this.close();
  }
}

/** Handles one event at a time, each held until the test lets it go; holds one more, refuses the rest. */
let letGo: () => void = () => undefined;
class Held extends WebsocketConsumer {
  static override groups = ['held'];
  static override mailboxCapacity = 1;
  async heldMessage(event: LayerMessage): Promise<void> {
    await new Promise<void>((resolve) => (letGo = resolve));
    this.send(event.text as string);
  }
}

const app = URLRouter([path('ws/room/', Room), path('ws/refuse/', Refuse), path('ws/held/', Held)]);

async function start(options: Partial<ServerOptions> = {}): Promise<{ server: Server; port: number; base: string }> {
  const server = new Server({ app, port: 0, heartbeatInterval: 0, logger: createLogger('silent'), ...options });
  const { port } = await server.listen();
  return { server, port, base: `ws://127.0.0.1:${port}` };
}

describe('GET /metrics', () => {
  let server: Server;
  afterEach(() => server?.close());

  test('counts exactly what happened: 3 sockets, 2 client frames, 3 group sends, 2 closes, 2 refusals', async () => {
    let port: number;
    let base: string;
    ({ server, port, base } = await start());
    const [a, b, c] = await Promise.all([0, 1, 2].map(async () => new Inbox(await openClient(`${base}/ws/room/`))));
    expect(await handshakeStatus(`${base}/ws/nowhere/`)).toBe(404);
    expect(await handshakeStatus(`${base}/ws/refuse/`)).toBe(403);

    a.ws.send('one');
    a.ws.send('two');
    for (const inbox of [a, b, c]) expect([await inbox.next(), await inbox.next()]).toEqual(['one', 'two']);
    await server.channelLayer.groupSend('room', { type: 'room.message', text: 'three' });
    for (const inbox of [a, b, c]) expect(await inbox.next()).toBe('three');

    a.ws.close(4001, 'leaving');
    b.ws.close(1000);
    await until(() => server.connectionCount === 1, 5000, 'two sockets ended');

    const { status, contentType, text } = await scrape(`http://127.0.0.1:${port}/metrics`);
    expect(status).toBe(200);
    expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const expected: Record<string, number> = {
      channelkit_connections: 1,
      'channelkit_handshakes_total{status="101"}': 3,
      'channelkit_handshakes_total{status="404"}': 1,
      'channelkit_handshakes_total{status="403"}': 1,
      'channelkit_disconnects_total{code="4001"}': 1,
      'channelkit_disconnects_total{code="1000"}': 1,
      channelkit_frames_received_total: 2,
      channelkit_frames_sent_total: 9,
      'channelkit_frames_dropped_total{reason="oversize"}': 0,
      'channelkit_frames_dropped_total{reason="slow_reader"}': 0,
      channelkit_slow_reader_closes_total: 0,
      channelkit_layer_group_sends_total: 3,
      channelkit_layer_sends_total: 0,
      channelkit_layer_messages_delivered_total: 9,
      channelkit_layer_mailbox_drops_total: 0,
      channelkit_layer_skipped_full_total: 0,
      channelkit_layer_up: 1,
      'channelkit_layer_send_seconds_count{operation="group_send"}': 0,
      'channelkit_history_recoveries_total{result="recovered"}': 0,
      'channelkit_history_recoveries_total{result="not_recovered"}': 0,
      channelkit_presence_members: 0,
    };
    const found = samples(text);
    for (const [series, value] of Object.entries(expected)) expect([series, found.get(series)]).toEqual([series, value]);
    // Exactly those label values, nothing else counted.
    expect([...found.keys()].filter((series) => series.startsWith('channelkit_handshakes_total'))).toHaveLength(3);
    expect([...found.keys()].filter((series) => series.startsWith('channelkit_disconnects_total'))).toHaveLength(2);
    // prom-client's process and Node.js metrics, under the same prefix; every name starts with channelkit_.
    // Served, but not necessarily above 0: prom-client counts the CPU time since the registry was made, and
    // Linux may account this test's few milliseconds of user time in whole scheduler ticks (CI saw 0 once).
    expect(found.get('channelkit_process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(found.get('channelkit_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect([...found.keys()].filter((series) => !series.startsWith('channelkit_'))).toEqual([]);
    // The gauges named like counters, which promtool rejects, are not served.
    expect(text).not.toMatch(/nodejs_active_(handles|requests|resources)_total/);
    c.ws.terminate();
  });

  test('a full mailbox refuses a layer message: counted as a mailbox drop and a skip', async () => {
    let port: number;
    let base: string;
    ({ server, port, base } = await start());
    const client = new Inbox(await openClient(`${base}/ws/held/`));
    // The first is being handled (held), the second waits in the mailbox (capacity 1), the third is refused.
    for (const text of ['1', '2', '3']) await server.channelLayer.groupSend('held', { type: 'held.message', text });
    letGo();
    expect(await client.next()).toBe('1');
    letGo();
    expect(await client.next()).toBe('2');
    const { text } = await scrape(`http://127.0.0.1:${port}/metrics`);
    expect(sample(text, 'channelkit_layer_group_sends_total')).toBe(3);
    expect(sample(text, 'channelkit_layer_messages_delivered_total')).toBe(2);
    expect(sample(text, 'channelkit_layer_mailbox_drops_total')).toBe(1);
    expect(sample(text, 'channelkit_layer_skipped_full_total')).toBe(1);
    client.ws.terminate();
  });

  test('frames not sent: oversize drops by reason, and a reader too slow closed once with 1013', async () => {
    let port: number;
    let base: string;
    ({ server, port, base } = await start({ maxOutboundFrame: 1000, maxBufferedBytes: 64 * 1024 }));
    const reader = new Inbox(await openClient(`${base}/ws/room/`));
    await server.channelLayer.groupSend('room', { type: 'room.message', text: 'x'.repeat(2000) });
    await server.channelLayer.groupSend('room', { type: 'room.message', text: 'fits' });
    expect(await reader.next()).toBe('fits');
    const stalled = await stalledClient(port);
    const payload = 'y'.repeat(900);
    // Until the stalled client's socket holds more than maxBufferedBytes and the server gives up on it.
    while (server.stats.slowReaderCloses === 0) {
      for (let i = 0; i < 20; i++) await server.channelLayer.groupSend('room', { type: 'room.message', text: payload });
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { text } = await scrape(`http://127.0.0.1:${port}/metrics`);
    expect(sample(text, 'channelkit_frames_dropped_total{reason="oversize"}')).toBe(1);
    expect(sample(text, 'channelkit_slow_reader_closes_total')).toBe(1);
    stalled.destroy();
    reader.ws.terminate();
  });

  test('history recoveries by result, and presence members, from the chat demo', async () => {
    const { application } = createDemo({ secret: 's', demoPassword: 'p', pushSecret: 'x', development: false, allowedOrigins: ['127.0.0.1'] });
    server = new Server({ app: application, port: 0, heartbeatInterval: 0, logger: createLogger('silent') });
    const { port } = await server.listen();
    const chat = (query: string) => openInbox(`ws://127.0.0.1:${port}/ws/chat/metrics/${query}`);
    const alice = await chat('?name=Alice');
    await alice.nextJson(); // presence_state
    alice.ws.send(JSON.stringify({ message: 'one' }));
    const { epoch } = (await alice.nextJson()) as { epoch: string };
    const back = await chat(`?since=0&epoch=${epoch}&name=Bob`);
    const gone = await chat('?since=0&epoch=another');
    await until(async () => sample((await scrape(`http://127.0.0.1:${port}/metrics`)).text, 'channelkit_presence_members') === 2, 5000, 'two members');
    const { text } = await scrape(`http://127.0.0.1:${port}/metrics`);
    expect(sample(text, 'channelkit_history_recoveries_total{result="recovered"}')).toBe(1);
    expect(sample(text, 'channelkit_history_recoveries_total{result="not_recovered"}')).toBe(1);
    back.ws.close();
    await until(async () => sample((await scrape(`http://127.0.0.1:${port}/metrics`)).text, 'channelkit_presence_members') === 1, 5000, 'one member left');
    for (const inbox of [alice, gone]) inbox.ws.close();
  });

  test('HEAD answers the headers only; other methods 405', async () => {
    let port: number;
    ({ server, port } = await start());
    const head = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(1000);
    const post = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('where /metrics is served', () => {
  let server: Server;
  afterEach(() => server.close());

  test('metrics: false (METRICS=off) answers 404', async () => {
    let port: number;
    ({ server, port } = await start({ metrics: false }));
    expect((await scrape(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
  });

  test('metrics: { port } (METRICS_PORT) serves it there and not on the server port; close() frees that port', async () => {
    let port: number;
    ({ server, port } = await start({ metrics: { port: 0 } }));
    const own = server.metricsAddress();
    expect(own).not.toBeNull();
    expect(own!.port).not.toBe(port);
    const there = await scrape(`http://127.0.0.1:${own!.port}/metrics`);
    expect(there.status).toBe(200);
    expect(sample(there.text, 'channelkit_connections')).toBe(0);
    expect((await scrape(`http://127.0.0.1:${own!.port}/healthz`)).status).toBe(404);
    expect((await scrape(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    await server.close();
    await expect(fetch(`http://127.0.0.1:${own!.port}/metrics`)).rejects.toThrow();
  });

  test('metrics: { exposition } answers what it returns (a cluster primary serves its workers\' sum this way)', async () => {
    let port: number;
    ({ server, port } = await start({ metrics: { exposition: async () => '# HELP x_total x\n# TYPE x_total counter\nx_total 7\n' } }));
    expect(sample((await scrape(`http://127.0.0.1:${port}/metrics`)).text, 'x_total')).toBe(7);
    // This process's own metrics stay readable as JSON, for the primary to sum.
    const json = await server.metricsJson();
    expect(json.find((metric) => metric.name === 'channelkit_connections')?.values[0].value).toBe(0);
  });
});

/** A client that completes the handshake to the room, then never reads again: its TCP window fills. */
function stalledClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1', () => {
      socket.write(
        'GET /ws/room/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
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
