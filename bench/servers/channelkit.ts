// channelkit as a user would write it: a consumer that joins its group and relays bench.message events.
// With REDIS_URL (S3) the layer is RedisPubSubChannelLayer, and messages come from an outside publisher.
import { type LayerMessage, Server, URLRouter, WebsocketConsumer, createLogger, path } from '../../src';
import { RedisPubSubChannelLayer } from '../../src/layers/redis/pubsub';
import { type System, serve } from './common';

class BenchConsumer extends WebsocketConsumer<{ group: string }> {
  override async connect(): Promise<void> {
    await this.groupAdd(this.scope.params.group);
    this.accept();
  }

  benchMessage(event: LayerMessage): void {
    this.send(event.payload as string);
  }

  /** S7: `j:<room>` joins a room, `l:<room>` leaves it; the answer `ok <frame>` goes once the layer has done it. */
  override async receive(data: string | Buffer): Promise<void> {
    const text = String(data);
    const room = text.slice(2);
    if (text.startsWith('j:')) await this.groupAdd(room);
    else if (text.startsWith('l:')) await this.groupDiscard(room);
    else throw new Error(`bench consumer: unknown frame ${text.slice(0, 40)}`); // logged, and the socket closes with 1011
    this.send(`ok ${text}`);
  }
}

const redisUrl = process.env.REDIS_URL;
const server = new Server({
  app: URLRouter([path('ws/bench/:group/', BenchConsumer)]),
  channelLayer: redisUrl ? new RedisPubSubChannelLayer({ url: redisUrl }) : undefined,
  port: 0,
  logger: createLogger(process.env.LOG_LEVEL ?? 'warn'),
  maxConnections: 200_000,
  // Scenario C: permessage-deflate on, with the threshold it sets (BENCH_DEFLATE_THRESHOLD).
  perMessageDeflate: process.env.BENCH_DEFLATE === '1' ? { threshold: Number(process.env.BENCH_DEFLATE_THRESHOLD ?? 1024) } : false,
});

// The bench reads the server's open sockets for back-pressure only (the per-socket bufferedAmount).
const live = (server as unknown as { live: Set<{ ws: { bufferedAmount: number } }> }).live;

const system: System = {
  listen: async () => (await server.listen()).port,
  members: () => server.connectionCount,
  publish(group, payloads) {
    for (const payload of payloads) {
      void server.channelLayer.groupSend(group, { type: 'bench.message', payload }).catch((error: unknown) => {
        console.error('groupSend failed', error);
      });
    }
  },
  maxBacklog() {
    let max = 0;
    for (const entry of live) {
      const b = entry.ws.bufferedAmount;
      if (b > max) max = b;
    }
    return max;
  },
};

void serve(system);
