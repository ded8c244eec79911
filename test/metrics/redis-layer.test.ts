// /metrics of a server on a Redis layer: link state per connection, reconnects after Redis comes back, send latency.
import { type ChannelLayer, type LayerMessage, RedisChannelLayer, RedisPubSubChannelLayer, Server, URLRouter, WebsocketConsumer, createLogger, path } from '../../src';
import { samples, scrape } from '../support/metrics';
import { RedisServer, describeRedis } from '../support/redis';
import { Inbox, openClient } from '../support/sockets';
import { until } from '../support/wait';

class Room extends WebsocketConsumer {
  static override groups = ['room'];
  roomMessage(event: LayerMessage): void {
    this.send(event.text as string);
  }
}

const app = URLRouter([path('ws/room/', Room)]);

/** The layer under test, and the names of its links to `url` as /metrics labels them. */
const layers: [string, (url: string) => ChannelLayer, (url: string) => string[]][] = [
  ['Redis pub/sub layer', (url) => new RedisPubSubChannelLayer({ url }), (url) => [`${url} (publish)`, `${url} (subscribe)`]],
  ['Redis list layer', (url) => new RedisChannelLayer({ url }), (url) => [url]],
];

describeRedis('/metrics on a Redis layer', () => {
  let redis: RedisServer;
  let layer: ChannelLayer;
  let server: Server;
  beforeAll(async () => (redis = await RedisServer.start()));
  afterAll(() => redis.close());
  afterEach(async () => {
    await server.close();
    await layer.close();
  });

  describe.each(layers)('%s', (_name, makeLayer, linksOf) => {
    test('links up, group-send latency observed once per send; Redis lost: links 0; back: links 1 and a reconnect each', async () => {
      layer = makeLayer(redis.url);
      server = new Server({ app, channelLayer: layer, port: 0, heartbeatInterval: 0, logger: createLogger('silent') });
      const { port } = await server.listen();
      const metrics = async () => samples((await scrape(`http://127.0.0.1:${port}/metrics`)).text);
      const links = linksOf(redis.url);
      const client = new Inbox(await openClient(`ws://127.0.0.1:${port}/ws/room/`));
      for (const text of ['a', 'b', 'c']) await layer.groupSend('room', { type: 'room.message', text });
      for (const text of ['a', 'b', 'c']) expect(await client.next()).toBe(text);

      let found = await metrics();
      for (const link of links) expect([link, found.get(`channelkit_layer_link_up{link="${link}"}`)]).toEqual([link, 1]);
      for (const link of links) expect([link, found.get(`channelkit_layer_link_reconnects_total{link="${link}"}`)]).toEqual([link, 0]);
      expect(found.get('channelkit_layer_up')).toBe(1);
      expect(found.get('channelkit_layer_group_sends_total')).toBe(3);
      expect(found.get('channelkit_layer_send_seconds_count{operation="group_send"}')).toBe(3);
      expect(found.get('channelkit_layer_send_seconds_bucket{operation="group_send",le="+Inf"}')).toBe(3);
      expect(found.get('channelkit_layer_send_seconds_sum{operation="group_send"}')).toBeGreaterThan(0);
      expect(found.get('channelkit_layer_messages_delivered_total')).toBe(3);

      await redis.stop();
      await until(async () => {
        found = await metrics();
        return links.every((link) => found.get(`channelkit_layer_link_up{link="${link}"}`) === 0);
      }, 10_000, 'every link reported down');
      expect(found.get('channelkit_layer_up')).toBe(0);

      await redis.start();
      await until(async () => {
        found = await metrics();
        return found.get('channelkit_layer_up') === 1 && links.every((link) => found.get(`channelkit_layer_link_up{link="${link}"}`) === 1);
      }, 15_000, 'every link back up');
      for (const link of links) expect([link, found.get(`channelkit_layer_link_reconnects_total{link="${link}"}`)]).toEqual([link, 1]);
      client.ws.terminate();
    }, 40_000);
  });
});
