// The server's socket side with real sockets: what reaches the client, in which order, around a close.
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { Server, type ServerOptions, WebsocketConsumer } from '../../src';
import { Opcode, RawClient, clientFrame, closeFrame } from '../support/raw-client';
import { until } from '../support/wait';

class Echo extends WebsocketConsumer {
  override receive(data: string | Buffer): void {
    this.send(data);
  }
}

async function start(options: Partial<ServerOptions> = {}) {
  const server = new Server({ app: async (scope, runtime) => new Echo(scope, runtime), port: 0, heartbeatInterval: 0, ...options });
  const { port } = await server.listen();
  return { server, port };
}

describe('frames queued before a close go out before the close frame', () => {
  test('a message and a close frame in one write: the echo, then the close', async () => {
    const { server, port } = await start();
    const client = await RawClient.open(port, '/');
    client.write(clientFrame(Opcode.text, 'hello'), closeFrame(1000));
    await client.ended;
    expect(client.frames.map((frame) => [frame.opcode, frame.code ?? frame.payload.toString()])).toEqual([
      [Opcode.text, 'hello'],
      [Opcode.close, 1000],
    ]);
    await server.close();
  });

  test('a message then a protocol error in one write: the echo, then close 1002', async () => {
    const { server, port } = await start();
    const client = await RawClient.open(port, '/');
    // An unmasked frame from a client is a protocol error.
    const unmasked = Buffer.from([0x81, 0x02, 0x68, 0x69]);
    client.write(clientFrame(Opcode.text, 'hello'), unmasked);
    await client.ended;
    expect(client.frames.map((frame) => [frame.opcode, frame.code ?? frame.payload.toString()])).toEqual([
      [Opcode.text, 'hello'],
      [Opcode.close, 1002],
    ]);
    await server.close();
  });

  test('many messages and a close in one write: every echo, in order, then the close', async () => {
    const { server, port } = await start();
    const client = await RawClient.open(port, '/');
    const texts = Array.from({ length: 50 }, (_, i) => `m${i}`);
    client.write(...texts.map((text) => clientFrame(Opcode.text, text)), closeFrame(1000));
    await client.ended;
    expect(client.frames.map((frame) => frame.code ?? frame.payload.toString())).toEqual([...texts, 1000]);
    await server.close();
  });
});

describe('after the closing handshake', () => {
  test("the server lets go of the socket without waiting for the client's FIN (ws would hold it 30 s)", async () => {
    const { server, port } = await start();
    const client = await RawClient.open(port, '/', { halfOpen: true });
    try {
      let serverFin = false;
      client.socket.once('end', () => (serverFin = true));
      client.write(closeFrame(1000));
      await until(() => serverFin, 2000, "the server's close frame and FIN");
      expect(client.frames.map((frame) => [frame.opcode, frame.code])).toEqual([[Opcode.close, 1000]]);
      await until(async () => server.connectionCount === 0 && (await server.socketCount()) === 0, 2000, 'the socket released');
    } finally {
      client.socket.destroy();
      await server.close();
    }
  });
});

describe('connect() that throws after accept()', () => {
  test('the client gets the 101, then close 1011, and nothing else on the stream', async () => {
    class FailsAfterAccept extends WebsocketConsumer {
      override connect(): void {
        this.accept();
        throw new Error('connect failed after accept');
      }
    }
    const server = new Server({ app: async (scope, runtime) => new FailsAfterAccept(scope, runtime), port: 0, heartbeatInterval: 0 });
    const { port } = await server.listen();
    const client = await RawClient.open(port, '/');
    await client.ended;
    expect(client.frames.map((frame) => [frame.opcode, frame.code])).toEqual([[Opcode.close, 1011]]);
    await until(() => server.connectionCount === 0, 5000, 'the server to forget the socket');
    await server.close();
  });
});

describe('accept({ subprotocol, headers })', () => {
  test('the extra headers and the subprotocol are in the 101 response', async () => {
    class WithHeaders extends WebsocketConsumer {
      override connect(): void {
        if (this.scope.subprotocols.includes('v2')) this.accept({ subprotocol: 'v2', headers: [['X-Server', 'channelkit']] });
        else this.accept();
      }
    }
    const server = new Server({ app: async (scope, runtime) => new WithHeaders(scope, runtime), port: 0, heartbeatInterval: 0 });
    const { port } = await server.listen();
    const client = new WebSocket(`ws://127.0.0.1:${port}/`, ['v1', 'v2']);
    const response = new Promise<IncomingMessage>((resolve) => client.once('upgrade', resolve));
    await new Promise((resolve) => client.once('open', resolve));
    expect((await response).headers['x-server']).toBe('channelkit');
    expect(client.protocol).toBe('v2');
    // Another connection's response does not get them.
    const plain = await RawClient.open(port, '/');
    expect(plain.responseHead.toLowerCase()).not.toContain('x-server');
    plain.destroy();
    client.terminate();
    await server.close();
  });
});
