// Server memory per socket that has sent one compressed message, with ws's inflate state kept (`keep`) or
// released after each message (`release`, clientNoContextTakeover: true). The 500 clients run in a child
// process, so their own compressors stay out of the server's figures.
//   LOG_LEVEL=silent node --expose-gc -r ts-node/register/transpile-only bench/inflate-memory.ts keep|release
import { fork } from 'node:child_process';
import WebSocket from 'ws';
import { Server, WebsocketConsumer } from '../src';

const CLIENTS = 500;

class Echo extends WebsocketConsumer {
  override receive(data: string | Buffer): void {
    this.send(data);
  }
}

async function settled(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
  await new Promise((resolve) => setTimeout(resolve, 300));
  gc();
  return process.memoryUsage();
}

async function clients(port: number): Promise<void> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    sockets.push(
      await new Promise<WebSocket>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { threshold: 0 } });
        ws.once('open', () => resolve(ws));
      }),
    );
  }
  process.send!('open');
  process.once('message', async () => {
    await Promise.all(sockets.map((ws) => new Promise((resolve) => (ws.once('message', resolve), ws.send('hello there, '.repeat(20))))));
    process.send!('sent');
  });
}

async function main(): Promise<void> {
  if (process.argv[2] === 'client') return clients(Number(process.argv[3]));
  const mode = process.argv[2] === 'release' ? 'release' : 'keep';
  const server = new Server({
    app: async (scope, runtime) => new Echo(scope, runtime),
    port: 0,
    heartbeatInterval: 0,
    metrics: false,
    rateLimit: false,
    perMessageDeflate: { clientNoContextTakeover: mode === 'release' },
  });
  const { port } = await server.listen();
  const child = fork(__filename, ['client', String(port)], { execArgv: ['-r', 'ts-node/register/transpile-only'] });
  await new Promise((resolve) => child.once('message', resolve));
  const before = await settled();
  child.send('go');
  await new Promise((resolve) => child.once('message', resolve));
  const after = await settled();
  const kib = (bytes: number): string => (bytes / CLIENTS / 1024).toFixed(1);
  console.log(`${mode}: per socket after one compressed client message: RSS ${kib(after.rss - before.rss)} KiB, external ${kib(after.external - before.external)} KiB`);
  child.kill();
  await server.close();
}

void main();
