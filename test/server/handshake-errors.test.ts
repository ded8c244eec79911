// What a client gets when the application fails before accept(): a layer that is down is 503, anything else 500.
import { InMemoryChannelLayer, LayerUnavailable, Server, URLRouter, WebsocketConsumer, path } from '../../src';
import { rawExchange } from '../support/sockets';

/** A layer whose Redis is down: joining a group fails as the Redis layers fail then. */
class DownLayer extends InMemoryChannelLayer {
  override async groupAdd(): Promise<void> {
    throw new LayerUnavailable('redis redis://:hunter2@10.0.0.9:6379 is down (ECONNREFUSED)');
  }
}

class Joins extends WebsocketConsumer {
  static override groups = ['everyone'];
}

class Broken extends WebsocketConsumer {
  override connect(): void {
    throw new Error('bug in connect');
  }
}

const handshake = (route: string) =>
  `GET ${route} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

describe('errors before accept()', () => {
  const layer = new DownLayer();
  const server = new Server({ app: URLRouter([path('ws/joins/', Joins), path('ws/broken/', Broken)]), channelLayer: layer, port: 0, heartbeatInterval: 0 });
  let port: number;
  beforeAll(async () => ({ port } = await server.listen()));
  afterAll(async () => {
    await server.close();
    await layer.close();
  });

  test('LayerUnavailable from connect() (groupAdd while Redis is down) refuses with 503 and says why', async () => {
    const answer = await rawExchange(port, handshake('/ws/joins/'));
    expect(answer).toMatch(/^HTTP\/1.1 503 /);
    expect(answer).toMatch(/channel layer unavailable/);
    // The layer's detail (a Redis URL may carry a password) stays in the server's log.
    expect(answer).not.toMatch(/hunter2|10\.0\.0\.9/);
  });

  test('any other error from connect() is still 500', async () => {
    expect(await rawExchange(port, handshake('/ws/broken/'))).toMatch(/^HTTP\/1.1 500 /);
  });
});
