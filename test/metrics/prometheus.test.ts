// /metrics as Prometheus itself reads it: promtool's lint passes, and a real Prometheus scrapes the values back.
import { type LayerMessage, Server, URLRouter, WebsocketConsumer, createLogger, path } from '../../src';
import { aggregateMetrics } from '../../src/metrics/aggregate';
import { PrometheusServer, describeWithBinary, promtoolCheckMetrics } from '../support/prometheus';
import { sample, scrape } from '../support/metrics';
import { Inbox, handshakeStatus, openClient } from '../support/sockets';
import { until } from '../support/wait';

class Room extends WebsocketConsumer {
  static override groups = ['room'];
  override receive(data: string | Buffer): Promise<void> {
    return this.groupSend('room', { type: 'room.message', text: String(data) });
  }
  roomMessage(event: LayerMessage): void {
    this.send(event.text as string);
  }
}

const app = URLRouter([path('ws/room/', Room)]);

async function start(): Promise<{ server: Server; port: number }> {
  const server = new Server({ app, port: 0, heartbeatInterval: 0, logger: createLogger('silent') });
  const { port } = await server.listen();
  return { server, port };
}

/** Known traffic: 3 sockets, 1 refused handshake (404), 2 client frames (each group-sent to all 3), 1 close with 4001. */
async function traffic(server: Server, port: number): Promise<Inbox> {
  const base = `ws://127.0.0.1:${port}`;
  const [a, b, c] = await Promise.all([0, 1, 2].map(async () => new Inbox(await openClient(`${base}/ws/room/`))));
  expect(await handshakeStatus(`${base}/ws/nowhere/`)).toBe(404);
  a.ws.send('one');
  a.ws.send('two');
  for (const inbox of [a, b, c]) expect([await inbox.next(), await inbox.next()]).toEqual(['one', 'two']);
  b.ws.close(4001);
  await until(() => server.connectionCount === 2, 5000, 'one socket ended');
  c.ws.terminate();
  await until(() => server.connectionCount === 1, 5000, 'a second socket ended');
  return a;
}

describeWithBinary('promtool', 'promtool check metrics', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });

  test('exits 0 on /metrics after traffic, with no finding', async () => {
    const { server, port } = await start();
    servers.push(server);
    const open = await traffic(server, port);
    const { text } = await scrape(`http://127.0.0.1:${port}/metrics`);
    const { code, output } = await promtoolCheckMetrics(text);
    expect({ code, output }).toEqual({ code: 0, output: '' });
    open.ws.terminate();
  });

  test('exits 0 on the sum over two processes (what a cluster primary serves), and the sum is right', async () => {
    const [first, second] = [await start(), await start()];
    servers.push(first.server, second.server);
    const open = [await traffic(first.server, first.port), await traffic(second.server, second.port)];
    const text = await aggregateMetrics([await first.server.metricsJson(), await second.server.metricsJson()]);
    expect(await promtoolCheckMetrics(text)).toEqual({ code: 0, output: '' });
    expect(sample(text, 'channelkit_connections')).toBe(2);
    expect(sample(text, 'channelkit_handshakes_total{status="101"}')).toBe(6);
    expect(sample(text, 'channelkit_handshakes_total{status="404"}')).toBe(2);
    expect(sample(text, 'channelkit_disconnects_total{code="4001"}')).toBe(2);
    expect(sample(text, 'channelkit_frames_received_total')).toBe(4);
    expect(sample(text, 'channelkit_frames_sent_total')).toBe(12);
    expect(sample(text, 'channelkit_layer_group_sends_total')).toBe(4);
    // Link and layer state: the minimum, so 1 means up in every process.
    expect(sample(text, 'channelkit_layer_up')).toBe(1);
    for (const inbox of open) inbox.ws.terminate();
  });
});

describeWithBinary('prometheus', 'a real Prometheus server scraping channelkit every second', () => {
  let prometheus: PrometheusServer | undefined;
  let server: Server | undefined;
  afterEach(async () => {
    await prometheus?.close();
    await server?.close();
  });

  test('reads back, through its HTTP API, the counts of known traffic', async () => {
    let port: number;
    ({ server, port } = await start());
    prometheus = await PrometheusServer.start([`127.0.0.1:${port}`]);
    const open = await traffic(server, port);
    const expected: Record<string, number> = {
      'up{job="channelkit"}': 1,
      channelkit_connections: 1,
      'channelkit_handshakes_total{status="101"}': 3,
      'channelkit_handshakes_total{status="404"}': 1,
      'channelkit_disconnects_total{code="4001"}': 1,
      channelkit_frames_received_total: 2,
      channelkit_frames_sent_total: 6,
      channelkit_layer_group_sends_total: 2,
      channelkit_layer_messages_delivered_total: 6,
      channelkit_layer_up: 1,
    };
    // Prometheus scrapes every second: wait for a scrape taken after the traffic (the last figure to change).
    const values = async () => {
      const found: Record<string, number | null> = {};
      for (const expression of Object.keys(expected)) found[expression] = await prometheus!.value(expression);
      return found;
    };
    let seen: Record<string, number | null> = {};
    await until(async () => JSON.stringify((seen = await values())) === JSON.stringify(expected), 30_000, 'Prometheus to scrape the traffic', 250).catch(
      (error: Error) => {
        throw new Error(`${error.message}; last seen ${JSON.stringify(seen)}`);
      },
    );
    expect(seen).toEqual(expected);
    // Every channelkit series Prometheus holds is named channelkit_*, and its process metrics came too.
    const names = (await prometheus.query('{job="channelkit"}')).map((sample) => sample.metric.__name__);
    expect(names.filter((name) => !name.startsWith('channelkit_') && !name.startsWith('scrape_') && name !== 'up')).toEqual([]);
    expect(names).toContain('channelkit_process_resident_memory_bytes');
    open.ws.terminate();
  }, 60_000);
});
