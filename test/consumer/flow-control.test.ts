// Flow control of client frames: reading pauses when a consumer is behind and resumes when its backlog of
// client frames drains, whatever else (its own group events) is queued.
import { InMemoryChannelLayer, type LayerMessage, Server, type ServerOptions, WebsocketConsumer } from '../../src';
import { Opcode, RawClient, clientFrame } from '../support/raw-client';
import { until } from '../support/wait';

let rooms = 0;

/** The chat pattern: each client frame is group-sent to the connection's own room, and group events are echoed. */
class Chat extends WebsocketConsumer {
  private room = '';
  override async connect(): Promise<void> {
    this.room = `room_${++rooms}`;
    await this.groupAdd(this.room);
    this.accept();
  }
  override async receive(data: string | Buffer): Promise<void> {
    await this.groupSend(this.room, { type: 'chat.message', text: String(data) });
  }
  chatMessage(event: LayerMessage): void {
    this.send(event.text as string);
  }
}

/** An in-memory layer whose group sends wait while it is stalled, as sends do while Redis stalls. */
class StallingLayer extends InMemoryChannelLayer {
  stall: Promise<void> | null = null;
  override async groupSend(group: string, message: LayerMessage): Promise<void> {
    if (this.stall) await this.stall;
    return super.groupSend(group, message);
  }
}

async function start(options: Partial<ServerOptions> = {}) {
  const server = new Server({ app: async (scope, runtime) => new Chat(scope, runtime), port: 0, heartbeatInterval: 0, ...options });
  const { port } = await server.listen();
  return { server, port };
}

const texts = (client: RawClient): string[] => client.frames.filter((frame) => frame.opcode === Opcode.text).map((frame) => frame.payload.toString());

describe('a burst of client frames', () => {
  test.each([64, 100, 190])('%i frames in one write are all echoed, and the next message still is', async (count) => {
    const { server, port } = await start();
    const client = await RawClient.open(port, '/');
    const burst = Array.from({ length: count }, (_, i) => `m${i}`);
    client.write(...burst.map((text) => clientFrame(Opcode.text, text)));
    await client.waitFrames(count);
    expect(texts(client)).toEqual(burst);
    client.write(clientFrame(Opcode.text, 'after'));
    await client.waitFrames(count + 1);
    expect(texts(client).at(-1)).toBe('after');
    client.destroy();
    await server.close();
  });
});

describe('a layer that stalls', () => {
  test('a client sending 30 frames/s through a 3 s stall gets every echo, and its next message too', async () => {
    const layer = new StallingLayer();
    const { server, port } = await start({ channelLayer: layer });
    const client = await RawClient.open(port, '/');
    let release!: () => void;
    layer.stall = new Promise<void>((resolve) => (release = resolve));
    const stallOver = setTimeout(() => {
      layer.stall = null;
      release();
    }, 3000);
    // 30 frames/s for 4 s: the stall holds about 90 of them, past the backlog of 64.
    const sent: string[] = [];
    for (let i = 0; i < 120; i++) {
      sent.push(`m${i}`);
      client.write(clientFrame(Opcode.text, `m${i}`));
      await new Promise((resolve) => setTimeout(resolve, 1000 / 30));
    }
    await client.waitFrames(sent.length, 10_000);
    expect(texts(client)).toEqual(sent);
    client.write(clientFrame(Opcode.text, 'after'));
    await client.waitFrames(sent.length + 1);
    expect(texts(client).at(-1)).toBe('after');
    clearTimeout(stallOver);
    client.destroy();
    await server.close();
    await layer.close();
  }, 30_000);
});

describe('a socket closed while its reading is paused', () => {
  test('a flooder closed with 1008 while paused reads the close reply and ends within seconds', async () => {
    // The layer stalls for the whole test: no frame gets handled, so the backlog never drains.
    const layer = new StallingLayer();
    let release!: () => void;
    layer.stall = new Promise<void>((resolve) => (release = resolve));
    const { server, port } = await start({ channelLayer: layer, rateLimit: { frameBurst: 100, framesPerSecond: 10 } });
    const client = await RawClient.open(port, '/');
    // One read: reading pauses at the 64th unhandled frame, and the 101st trips the rate limit.
    client.write(...Array.from({ length: 150 }, (_, i) => clientFrame(Opcode.text, `m${i}`)));
    expect(await client.closeCode()).toBe(1008);
    // The client answered the close; the server must read that and end the TCP connection, not wait for
    // ws's 30 s close timeout.
    const ended = await Promise.race([client.ended.then(() => true), new Promise((resolve) => setTimeout(resolve, 5000, false))]);
    expect(ended).toBe(true);
    layer.stall = null;
    release();
    await until(() => server.connectionCount === 0, 5000, 'the disconnect to be handled');
    await server.close();
    await layer.close();
  }, 30_000);
});
