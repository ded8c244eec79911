// The room under attack: a real Server running the chat app, six healthy clients chatting in the fuzz room, and what
// must hold once the hostile input is over (every healthy message delivered once, no error logged, prototypes intact).
import { Writable } from 'node:stream';
import pino from 'pino';
import type WebSocket from 'ws';
import { application, http } from '../../routing';
import { Server } from '../../src';
import { openClient } from '../support/sockets';
import { poll, until } from '../support/wait';
import { ROOM_PATH } from './settings';

export interface Healthy {
  clients: WebSocket[];
  /** received[i] holds every healthy message client i got, with duplicates. */
  received: string[][];
  sent: string[];
  closed: number[];
  stop(): void;
}

export async function startHealthy(base: string, count: number): Promise<Healthy> {
  const clients = await Promise.all(Array.from({ length: count }, () => openClient(`${base}${ROOM_PATH}`)));
  const healthy: Healthy = { clients, received: clients.map(() => []), sent: [], closed: [], stop: () => undefined };
  clients.forEach((ws, i) => {
    ws.on('message', (data: Buffer) => {
      const value = JSON.parse(data.toString()) as { message?: string };
      if (typeof value.message === 'string' && value.message.startsWith('healthy:')) healthy.received[i].push(value.message);
    });
    ws.on('close', (code) => healthy.closed.push(code));
  });
  let n = 0;
  const timer = setInterval(() => {
    clients.forEach((ws, i) => {
      const message = `healthy:${i}:${n}`;
      healthy.sent.push(message);
      ws.send(JSON.stringify({ message }));
    });
    n++;
  }, 50);
  healthy.stop = () => clearInterval(timer);
  return healthy;
}

/** Runs `tasks` with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await task(items[next++]);
    }),
  );
}

export function prototypeSnapshot(): string {
  const describe = (proto: object) =>
    Reflect.ownKeys(proto)
      .map((key) => {
        const d = Object.getOwnPropertyDescriptor(proto, key)!;
        return `${String(key)}:${typeof d.value}:${typeof d.get}:${d.enumerable}`;
      })
      .sort()
      .join(',');
  return [Object.prototype, Array.prototype, Function.prototype, String.prototype].map(describe).join('|');
}


/** Healthy messages the room sends at least before its check: proof that the room chatted through the hostile input. */
const MIN_HEALTHY_MESSAGES = 100;

/** One server and its healthy room, opened per test. */
export class FuzzRoom {
  private readonly prototypesBefore = prototypeSnapshot();

  private constructor(
    readonly server: Server,
    readonly port: number,
    readonly healthy: Healthy,
    private readonly logs: { level: number; msg: string }[],
  ) {}

  static async open(): Promise<FuzzRoom> {
    const logs: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    const server = new Server({ app: application, http, port: 0, logger: pino({ level: 'info' }, sink) });
    const { port } = await server.listen();
    const healthy = await startHealthy(`ws://127.0.0.1:${port}`, 6);
    return new FuzzRoom(server, port, healthy, logs);
  }

  /** Healthy clients got every message once, the server is up, holds only them, logged no error, prototypes intact. */
  async expectUnharmed(): Promise<void> {
    const { healthy, server, port } = this;
    await until(() => healthy.sent.length > MIN_HEALTHY_MESSAGES, 10_000, `${MIN_HEALTHY_MESSAGES} healthy messages`);
    healthy.stop();
    const expected = healthy.sent.length;
    await poll(() => healthy.received.every((got) => got.length >= expected), 10_000, 50);
    const sentSorted = [...healthy.sent].sort();
    for (const [i, got] of healthy.received.entries()) {
      expect({ client: i, count: got.length }).toEqual({ client: i, count: expected });
      expect([...got].sort()).toEqual(sentSorted);
    }
    expect(expected).toBeGreaterThan(MIN_HEALTHY_MESSAGES);
    expect(healthy.closed).toEqual([]);

    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    await poll(() => server.connectionCount === healthy.clients.length, 5000, 50);
    expect(server.connectionCount).toBe(healthy.clients.length);

    expect(this.logs.filter((line) => line.level >= 50)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect(prototypeSnapshot()).toBe(this.prototypesBefore);
    process.stdout.write(`fuzz: ${healthy.clients.length} healthy clients each got ${expected} messages; ${this.logs.length} log lines, none at error level\n`);
  }

  async close(): Promise<void> {
    this.healthy.stop();
    for (const ws of this.healthy.clients) ws.terminate();
    await this.server.close();
  }
}

/** Runs `attack` against a fresh room, then checks the room came through unharmed; the room is closed either way. */
export async function inRoom(attack: (room: FuzzRoom) => Promise<void>): Promise<void> {
  const room = await FuzzRoom.open();
  try {
    await attack(room);
    await room.expectUnharmed();
  } finally {
    await room.close();
  }
}
