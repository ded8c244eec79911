// Fixed workloads for instruction counts (valgrind --tool=callgrind), server and clients in one process:
//   churn <ck|raw> N        N connect/upgrade/join/close cycles, 8 at a time, as S4's loops do them
//   fanout <ck|raw> N M     N clients in one group, M group sends of 64 bytes, 50 per event-loop turn
// `ck` is the bench consumer on channelkit's Server; `raw` is raw ws with a Map insert per connection
// (S4's naive server) and, for fan-out, the ceiling probe's one write per socket per turn.
// Per-operation cost = (count at 2N − count at N) / N, so start-up and warm-up cancel out. With
// PROF=<file> a warm-up run comes first, then a V8 CPU profile of the measured run only. With STEADY=<W> (churn
// only) W warm-up cycles come first, and the process waits for SIGUSR2 before the measured run and before it
// exits, so that callgrind counts the measured run alone (bench/callgrind-steady.sh sends the signals). With
// ALLOC=1, the bytes allocated per operation, by function (see allocations()).
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Session } from 'node:inspector';
import { type AddressInfo, type Socket, connect } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { Server, URLRouter, WebsocketConsumer, createLogger, path, type LayerMessage } from '../src';

const [mode, system, countArg, messagesArg] = process.argv.slice(2);
const count = Number(countArg ?? 1000);
const messages = Number(messagesArg ?? 1000);

class BenchConsumer extends WebsocketConsumer<{ group: string }> {
  override async connect(): Promise<void> {
    await this.groupAdd(this.scope.params.group);
    this.accept();
  }

  benchMessage(event: LayerMessage): void {
    this.send(event.payload as string);
  }
}

interface Target {
  port: number;
  path: string;
  members(): number;
  publish(payloads: string[]): void;
  close(): Promise<void>;
}

async function channelkit(): Promise<Target> {
  const server = new Server({ app: URLRouter([path('ws/bench/:group/', BenchConsumer)]), port: 0, logger: createLogger('warn'), maxConnections: 200_000 });
  const { port } = await server.listen();
  return {
    port,
    path: '/ws/bench/g/',
    members: () => server.connectionCount,
    publish(payloads) {
      for (const payload of payloads) void server.channelLayer.groupSend('g', { type: 'bench.message', payload });
    },
    close: () => server.close(),
  };
}

/** Raw ws with a Map insert per connection (S4's naive server) and, for fan-out, the ceiling probe's one write per turn. */
async function raw(): Promise<Target> {
  const frame = (WebSocket as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender.frame;
  const options = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false };
  const members = new Map<WebSocket, Socket>();
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: false });
  wss.on('connection', (ws) => {
    members.set(ws, (ws as unknown as { _socket: Socket })._socket);
    ws.on('error', () => undefined);
    ws.on('close', () => members.delete(ws));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    port: (http.address() as AddressInfo).port,
    path: '/g/',
    members: () => members.size,
    publish(payloads) {
      const parts: Buffer[] = [];
      for (const payload of payloads) parts.push(...frame(Buffer.from(payload), options));
      const bytes = Buffer.concat(parts);
      for (const socket of members.values()) socket.write(bytes);
    },
    close: () => new Promise((resolve) => http.close(() => resolve())),
  };
}

const CLOSE_FRAME = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

function upgrade(target: Target): Buffer {
  return Buffer.from(
    `GET ${target.path} HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
}

/** Connects, reads the 101, sends a close frame, waits for the server to end the connection. */
function cycle(target: Target, request: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: target.port, host: '127.0.0.1' });
    let seen = '';
    let closing = false;
    socket.on('data', (chunk) => {
      if (closing) return;
      seen += chunk.toString('latin1');
      if (seen.startsWith('HTTP/1.1 101') && seen.includes('\r\n\r\n')) {
        closing = true;
        socket.write(CLOSE_FRAME);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => (closing ? resolve() : reject(new Error(`no 101: ${seen.slice(0, 40)}`))));
    socket.once('connect', () => socket.write(request));
  });
}

async function churn(target: Target, cycles = count): Promise<void> {
  const request = upgrade(target);
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < cycles) {
      next++;
      await cycle(target, request);
    }
  };
  await Promise.all(Array.from({ length: 8 }, loop));
}

async function fanout(target: Target): Promise<void> {
  const request = upgrade(target);
  let received = 0;
  const expected = count * messages;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  const sockets: Socket[] = [];
  while (target.members() > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  for (let i = 0; i < count; i++) {
    const socket = connect({ port: target.port, host: '127.0.0.1' });
    sockets.push(socket);
    let upgraded = false;
    socket.on('data', (chunk: Buffer) => {
      let at = 0;
      if (!upgraded) {
        at = chunk.indexOf('\r\n\r\n') + 4;
        upgraded = true;
      }
      // Frames of 64-byte payloads: 2 header bytes each (a frame never splits at these sizes on loopback? it may: count bytes).
      received += (chunk.length - at) / 66;
      if (received >= expected) done();
    });
    socket.once('connect', () => socket.write(request));
  }
  while (target.members() < count) await new Promise((resolve) => setTimeout(resolve, 10));
  const padding = 'x'.repeat(64 - 27);
  let sent = 0;
  await new Promise<void>((resolve) => {
    const turn = (): void => {
      const batch: string[] = [];
      for (let i = 0; i < 50 && sent < messages; i++, sent++) batch.push(`#${String(sent).padStart(10, '0')}${'0'.repeat(16)}${padding}`);
      target.publish(batch);
      if (sent < messages) setImmediate(turn);
      else resolve();
    };
    turn();
  });
  await all;
  for (const socket of sockets) socket.destroy();
}

function inspectorSession(): (method: string, params?: object) => Promise<unknown> {
  const session = new Session();
  session.connect();
  return (method, params) => new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
}

/** With PROF=<file>: a warm-up run first, then a V8 CPU profile of the measured run only. */
async function profiled(run: () => Promise<void>): Promise<void> {
  const file = process.env.PROF;
  if (!file) return run();
  await run();
  const post = inspectorSession();
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  await run();
  const { profile } = (await post('Profiler.stop')) as { profile: object };
  writeFileSync(file, JSON.stringify(profile));
}

interface SampledNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampledNode[];
}

/**
 * With ALLOC=1: a warm-up run, then V8's sampling heap profiler (every 128 bytes, objects collected since
 * included) over the measured run; prints the bytes allocated per operation (cycle, or delivery for fanout),
 * server and clients together, and the functions that allocated most (`--no-turbo-inlining` charges inlined
 * callees to themselves). Allocation is what the young-generation GC pays for, and it repeats from run to run
 * far better than CPU time here.
 */
async function allocations(run: () => Promise<void>, operations: number): Promise<void> {
  await run();
  const post = inspectorSession();
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startSampling', { samplingInterval: 128, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await run();
  const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: { head: SampledNode } };
  const bytes = new Map<string, number>();
  const walk = (node: SampledNode): void => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${lineNumber + 1}`;
    bytes.set(where, (bytes.get(where) ?? 0) + node.selfSize);
    node.children.forEach(walk);
  };
  walk(profile.head);
  const total = [...bytes.values()].reduce((sum, size) => sum + size, 0);
  console.log(`allocated: ${(total / operations).toFixed(0)} bytes per ${mode === 'churn' ? 'cycle' : 'delivery'}`);
  for (const [where, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 30))) {
    console.log(`${(size / operations).toFixed(0).padStart(8)}  ${where}`);
  }
}

/**
 * With STEADY=<W>: W churn cycles to warm up, then the measured run between two SIGUSR2s (callgrind's counters
 * are zeroed before the first and dumped before the second). Start-up and most compiles stay out of the count.
 */
async function steady(target: Target, warmup: number, run: () => Promise<void>): Promise<void> {
  const signal = (): Promise<void> => new Promise((resolve) => process.once('SIGUSR2', () => resolve()));
  await churn(target, warmup);
  console.log('warm: waiting for SIGUSR2');
  await signal();
  await run();
  console.log('measured: waiting for SIGUSR2');
  await signal();
}

async function main(): Promise<void> {
  const target = system === 'ck' ? await channelkit() : await raw();
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const run = (): Promise<void> => (mode === 'churn' ? churn(target) : fanout(target));
  const operations = mode === 'churn' ? count : count * messages;
  if (process.env.STEADY) await steady(target, Number(process.env.STEADY), run);
  else if (process.env.ALLOC) await allocations(run, operations);
  else await profiled(run);
  const used = process.cpuUsage(cpu);
  console.log(`${mode} ${system} ${count}${mode === 'fanout' ? `x${messages}` : ''}: ${Number(process.hrtime.bigint() - started) / 1e6} ms, CPU ${(used.user + used.system) / 1000} ms`);
  await target.close();
  process.exit(0);
}

void main();
