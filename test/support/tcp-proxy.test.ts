// TcpProxy: pipes both ways; cut() kills open connections on both ends (a WebSocket sees 1006) and refuses
// or holds new ones until restore(); close() leaves nothing open.
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { TcpProxy } from './tcp-proxy';

/** A TCP server that echoes what it gets, and remembers its sockets. */
async function echoServer(): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves with the first `length` bytes `socket` receives, as text. */
function read(socket: Socket, length: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      if (text.length < length) return;
      socket.off('data', onData);
      resolve(text);
    };
    socket.on('data', onData);
  });
}

/** Resolves once `socket` closed, saying whether it saw an error first (a reset). */
function closed(socket: Socket): Promise<{ error: string | null }> {
  return new Promise((resolve) => {
    let error: string | null = null;
    socket.on('error', (failure: NodeJS.ErrnoException) => (error = failure.code ?? failure.message));
    socket.once('close', () => resolve({ error }));
  });
}

let echo: Awaited<ReturnType<typeof echoServer>>;
let proxy: TcpProxy;
const clients: Socket[] = [];

beforeEach(async () => {
  echo = await echoServer();
  proxy = await TcpProxy.start({ port: echo.port });
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await proxy.close();
  for (const socket of echo.sockets) socket.destroy();
  await new Promise<void>((resolve) => echo.server.close(() => resolve()));
});

async function client(): Promise<Socket> {
  const socket = await open(proxy.port);
  clients.push(socket);
  return socket;
}

test('pipes bytes both ways on its own free port', async () => {
  expect(proxy.port).not.toBe(echo.port);
  const socket = await client();
  const answer = read(socket, 5);
  socket.write('hello');
  await expect(answer).resolves.toBe('hello');
  expect(proxy.connections).toBe(1);
});

test('cut() resets every open connection on both ends; new ones are refused until restore()', async () => {
  const socket = await client();
  const answer = read(socket, 2);
  socket.write('hi');
  await answer;
  expect(echo.sockets.size).toBe(1);
  const gone = closed(socket);
  proxy.cut();
  await expect(gone).resolves.toEqual({ error: 'ECONNRESET' });
  while (echo.sockets.size > 0) await new Promise((resolve) => setImmediate(resolve));

  // Refused: reset as soon as accepted (the connect itself may fail), before a byte passes.
  const refused = await new Promise<string>((resolve) => {
    const socket = connect(proxy.port, '127.0.0.1', () => socket.write('anyone?'));
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    socket.once('close', () => resolve('closed without an error'));
  });
  expect(refused).toBe('ECONNRESET');
  expect(echo.sockets.size).toBe(0);

  proxy.restore();
  const again = await client();
  const back = read(again, 4);
  again.write('back');
  await expect(back).resolves.toBe('back');
});

test("cut('hold') keeps new connections waiting with what they sent, and restore() delivers it", async () => {
  proxy.cut('hold');
  const socket = await client();
  socket.write('queued');
  while (proxy.waiting === 0) await new Promise((resolve) => setImmediate(resolve));
  expect(echo.sockets.size).toBe(0);
  const answer = read(socket, 6);
  proxy.restore();
  await expect(answer).resolves.toBe('queued');
  expect(proxy.waiting).toBe(0);
  expect(proxy.connections).toBe(1);
});

test('a WebSocket through the proxy: cut() makes the client see 1006 and the server see the socket end', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => wss.once('listening', resolve));
  const wsProxy = await TcpProxy.start({ port: (wss.address() as AddressInfo).port });
  try {
    const serverSide = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
    const ws = new WebSocket(`ws://127.0.0.1:${wsProxy.port}/`);
    await new Promise((resolve) => ws.once('open', resolve));
    const peer = await serverSide;
    const clientClosed = new Promise<number>((resolve) => ws.once('close', resolve));
    const serverClosed = new Promise<number>((resolve) => peer.once('close', resolve));
    ws.on('error', () => {});
    peer.on('error', () => {});
    wsProxy.cut();
    await expect(clientClosed).resolves.toBe(1006);
    await expect(serverClosed).resolves.toBe(1006);

    // A graceful close through a restored proxy still completes its handshake.
    wsProxy.restore();
    const second = new WebSocket(`ws://127.0.0.1:${wsProxy.port}/`);
    await new Promise((resolve) => second.once('open', resolve));
    const code = new Promise<number>((resolve) => second.once('close', resolve));
    second.close(1000, 'bye');
    await expect(code).resolves.toBe(1000);
  } finally {
    await wsProxy.close();
    await new Promise((resolve) => wss.close(resolve));
  }
});

test('close() resets held and piped connections and stops listening', async () => {
  const piped = await client();
  const pipedEnd = closed(piped);
  const answer = read(piped, 1);
  piped.write('x');
  await answer;
  proxy.cut('hold');
  const held = await client();
  const heldEnd = closed(held);
  while (proxy.waiting === 0) await new Promise((resolve) => setImmediate(resolve));
  const port = proxy.port;
  await proxy.close();
  await pipedEnd;
  await heldEnd;
  await expect(open(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  proxy = await TcpProxy.start({ port: echo.port }); // for afterEach
});
