// Shutdown under load: a real `channelkit serve` process with 1,000 chat clients sending, then SIGTERM.
// Every client must get 1001, every disconnect handler must run (one "disconnect" log line per client,
// code 1001), the process must exit 0 within the drain timeout (10 s), and log nothing at error level.
// SHUTDOWN_CLIENTS changes the client count (the test process holds one socket per client).
import type WebSocket from 'ws';
import { ServerProcess } from '../support/processes';
import { RedisServer, describeRedis } from '../support/redis';
import { openClient } from '../support/sockets';

const CLIENTS = Number(process.env.SHUTDOWN_CLIENTS ?? 1000);
const ROOMS = 20;
const DRAIN_TIMEOUT_MS = 10_000;
/** Each client sends one chat message per this many ms, at a random phase. */
const SEND_EVERY_MS = 2000;

interface LogLine {
  level: number;
  msg: string;
  event?: string;
  code?: number;
  [key: string]: unknown;
}

async function shutdownUnderLoad(env: NodeJS.ProcessEnv): Promise<void> {
  const server = new ServerProcess(env);
  const clients: WebSocket[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    const port = await server.ready;
    // Connect in batches: a burst of 1,000 handshakes at once only measures the accept queue.
    for (let i = 0; i < CLIENTS; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, CLIENTS - i) }, (_, j) => openClient(`ws://127.0.0.1:${port}/ws/chat/room-${(i + j) % ROOMS}/`)),
      );
      clients.push(...batch);
    }
    let received = 0;
    let sent = 0;
    const closeCodes = clients.map(
      (ws) =>
        new Promise<number>((resolve) => {
          ws.on('message', () => received++);
          ws.on('error', () => undefined);
          ws.once('close', (code) => resolve(code));
        }),
    );
    clients.forEach((ws, i) => {
      const start = setTimeout(() => {
        const send = () => {
          if (ws.readyState !== ws.OPEN) return;
          ws.send(JSON.stringify({ message: `client ${i} message ${sent++}` }));
        };
        send();
        timers.push(setInterval(send, SEND_EVERY_MS));
      }, Math.floor(Math.random() * SEND_EVERY_MS));
      timers.push(start);
    });
    // Let traffic reach a steady state: three send periods, so every client has sent at least once (the elapsed
    // time is the condition: the signal must land in steady traffic, not at its start).
    await new Promise((resolve) => setTimeout(resolve, 3 * SEND_EVERY_MS));
    expect(sent).toBeGreaterThanOrEqual(CLIENTS);
    expect(received).toBeGreaterThan(sent); // fan-out: each message reaches its room

    // A burst as the signal goes: frames are in flight and in mailboxes while the server drains.
    clients.forEach((ws, i) => ws.send(JSON.stringify({ message: `client ${i} last words ${sent++}` })));
    const sigterm = Date.now();
    const exitCode = await server.stop();
    const elapsed = Date.now() - sigterm;
    const codes = await Promise.all(closeCodes);
    for (const timer of timers) clearInterval(timer);

    const lines = server.output.split('\n').filter(Boolean);
    const logs: LogLine[] = [];
    const unparsed: string[] = [];
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        unparsed.push(line);
      }
    }
    const byCode = (values: number[]) => values.reduce<Record<number, number>>((acc, code) => ({ ...acc, [code]: (acc[code] ?? 0) + 1 }), {});
    const disconnects = logs.filter((line) => line.event === 'disconnect');
    process.stdout.write(
      `shutdown (${env.REDIS_URL ? 'Redis pub/sub' : 'in-memory'}): ${CLIENTS} clients, ${sent} sent, ${received} received; ` +
        `SIGTERM to exit ${elapsed} ms, exit code ${exitCode}; client close codes ${JSON.stringify(byCode(codes))}; ` +
        `${disconnects.length} disconnect lines ${JSON.stringify(byCode(disconnects.map((d) => d.code ?? -1)))}; ` +
        `warnings: ${JSON.stringify(logs.filter((line) => line.level === 40).map((line) => line.msg))}\n`,
    );

    expect(exitCode).toBe(0);
    expect(elapsed).toBeLessThan(DRAIN_TIMEOUT_MS);
    expect(byCode(codes)).toEqual({ 1001: CLIENTS });
    expect(byCode(disconnects.map((d) => d.code ?? -1))).toEqual({ 1001: CLIENTS });
    expect(logs.filter((line) => line.level >= 50)).toEqual([]);
    expect(unparsed).toEqual([]);
    expect(logs.some((line) => line.msg === 'drain timeout: terminating remaining sockets')).toBe(false);
    expect(logs.some((line) => line.msg === 'closed')).toBe(true);
  } finally {
    for (const timer of timers) clearInterval(timer);
    for (const ws of clients) ws.terminate();
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  }
}

describe('SIGTERM under load', () => {
  test(`in-memory layer: ${CLIENTS} clients sending get 1001, disconnect handlers run, exit 0, no error logged`, async () => {
    await shutdownUnderLoad({});
  }, 90_000);
});

describeRedis('SIGTERM under load on the Redis pub/sub layer', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis?.close();
  });

  test(`Redis pub/sub layer: ${CLIENTS} clients sending get 1001, disconnect handlers run, exit 0, no error logged`, async () => {
    await shutdownUnderLoad({ REDIS_URL: redis.url });
  }, 90_000);
});
