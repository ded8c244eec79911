// Heap and RSS per idle grouped connection, channelkit vs a raw ws server, clients in a child process.
// node --expose-gc -r ts-node/register/transpile-only bench/heap-per-connection.ts (ck|raw); N=5000 by default,
// SNAP=1 also writes /tmp/<system>.heapsnapshot for a diff in Chrome DevTools.
import { fork } from 'node:child_process';
import { WebSocketServer } from 'ws';
import { type LayerMessage, Server, URLRouter, WebsocketConsumer, createLogger, path } from '../src';

const N = Number(process.env.N ?? 5000);
class C extends WebsocketConsumer<{ group: string }> {
  override async connect() { await this.groupAdd(this.scope.params.group); this.accept(); }
  benchMessage(e: LayerMessage) { this.send(e.payload as string); }
}
async function clients(port: number, path: string) {
  const child = fork(__filename, ['client', String(port), path], { execArgv: ['-r', 'ts-node/register/transpile-only'] });
  await new Promise((r) => child.once('message', r));
  return child;
}
function mem() { (global as any).gc(); (global as any).gc(); const m = process.memoryUsage(); return { heap: m.heapUsed, rss: m.rss }; }
async function main() {
  if (process.argv[2] === 'client') {
    const { default: WebSocket } = await import('ws');
    const port = Number(process.argv[3]);
    let open = 0;
    for (let i = 0; i < N; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, k) => new Promise<void>((res) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}${process.argv[4].replace('G', String((i + k) % 100))}`);
        ws.on('open', () => { open++; res(); }); ws.on('error', () => res());
      })));
    }
    process.send!(open);
    return;
  }
  const which = process.argv[2];
  let port: number; let close: () => Promise<void>;
  const before0 = mem();
  if (which === 'ck') {
    const server = new Server({ app: URLRouter([path('ws/bench/:group/', C)]), port: 0, logger: createLogger('warn'), heartbeatInterval: 30000 });
    port = (await server.listen()).port; close = () => server.close();
  } else {
    const groups = new Map<string, Set<unknown>>();
    const wss = new WebSocketServer({ port: 0, perMessageDeflate: false });
    wss.on('connection', (ws, req) => { const g = req.url!; let s = groups.get(g); if (!s) groups.set(g, s = new Set()); s.add(ws); ws.on('close', () => s!.delete(ws)); });
    await new Promise((r) => wss.once('listening', r));
    port = (wss.address() as any).port; close = async () => { for (const c of wss.clients) c.terminate(); wss.close(); };
  }
  // warm up with a small batch, then measure N
  const warm = await clients(port, '/ws/bench/G/');
  await new Promise((r) => setTimeout(r, 500));
  const before = mem();
  const child = await clients(port, '/ws/bench/G/');
  await new Promise((r) => setTimeout(r, 1000));
  const after = mem();
  if (process.env.SNAP) require('v8').writeHeapSnapshot(`/tmp/${which}.heapsnapshot`);
  console.log(which, 'heap KiB/conn', ((after.heap - before.heap) / N / 1024).toFixed(2), 'rss KiB/conn', ((after.rss - before.rss) / N / 1024).toFixed(2));
  child.kill(); warm.kill(); await close(); void before0; process.exit(0);
}
void main();
