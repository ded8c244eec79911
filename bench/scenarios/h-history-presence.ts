// H1 recovery storm and H2 presence join, on the chat demo over a private Redis: what a deploy costs
// when every client of a room comes back at once, and what a crowd joining one room costs.
import { fork } from 'node:child_process';
import { join } from 'node:path';
import WebSocket from 'ws';
import { io as ioClient, type Socket } from 'socket.io-client';
import { TS_NODE } from '../child';
import { BenchRedis } from './bench-redis';
import { ServerProcess } from '../../test/support/processes';
import { createPublisher } from '../../src/publisher';
import { quick, type SystemName } from '../options';
import { CHAT_HISTORY } from '../../consumers/chat';
import type { Scenario } from '../harness';
import { fmt, table } from '../table';
import { type RedisClient, commandStats } from './redis-cost';

interface Row {
  name: string;
  clients: number;
  messages: number;
  ms: number;
  commands: number;
  seen: string;
  check: string;
}

const sizes = {
  stormClients: quick ? 500 : 2_000,
  stormMessages: quick ? 200 : 1_000,
  presenceClients: quick ? 300 : 1_000,
};

type Frame = { message?: string; offset?: number; epoch?: string; type?: string; recovered?: boolean; members?: unknown[]; joins?: { id: string }[]; leaves?: { id: string }[] };

/** Opens `count` sockets to `url(i)` at once, each handing its frames to `onFrame(i, frame)`. */
async function openAll(count: number, url: (i: number) => string, onFrame: (i: number, frame: Frame) => void): Promise<WebSocket[]> {
  const sockets = Array.from({ length: count }, (_, i) => {
    const socket = new WebSocket(url(i), { perMessageDeflate: false });
    socket.on('message', (data) => onFrame(i, JSON.parse(String(data)) as Frame));
    return socket;
  });
  await Promise.all(sockets.map((socket) => new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); })));
  return sockets;
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((socket) => new Promise((resolve) => { socket.once('close', resolve); socket.close(); })));
}

function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const tick = (): void => {
      if (check()) resolve(true);
      else if (Date.now() > deadline) resolve(false);
      else setTimeout(tick, 5);
    };
    tick();
  });
}

/** Redis commands between two INFO commandstats reads, without the bench's own reads. */
function delta(before: Map<string, number>, after: Map<string, number>): { total: number; seen: string } {
  let total = 0;
  const seen: string[] = [];
  for (const [name, calls] of after) {
    if (name === 'info' || name.startsWith('client')) continue;
    const d = calls - (before.get(name) ?? 0);
    if (d > 0) {
      total += d;
      seen.push(`${name.toUpperCase()} ${d}`);
    }
  }
  return { total, seen: seen.join(', ') || 'none' };
}

/**
 * The chat demo under `serve --workers N` without Redis: history and presence live in the primary, and
 * every join, history send and presence change crosses the workers' IPC pipe. No Redis: commands n/a.
 */
async function withWorkers<T>(workers: number, body: (port: number) => Promise<T>): Promise<T> {
  const server = new ServerProcess({ WORKERS: String(workers) });
  try {
    const port = await server.ready;
    if (!(await until(() => server.output.includes('"msg":"all workers listening"'), 60_000))) throw new Error(`workers did not start: ${server.output.slice(-500)}`);
    return await body(port);
  } finally {
    await server.stop();
  }
}

async function withDemo<T>(body: (port: number, admin: RedisClient, redisUrl: string) => Promise<T>): Promise<T> {
  const redis = await BenchRedis.start();
  const { admin } = redis;
  const server = new ServerProcess({ REDIS_URL: redis.url });
  try {
    return await body(await server.ready, admin, redis.url);
  } finally {
    await server.stop();
    await redis.close();
  }
}

/** How one storm went: every client's frames checked (each missed offset once, in order, then `recovered`). */
interface Storm {
  ok: boolean;
  ms: number;
  done: number;
  wrong: number;
}

/**
 * N clients of `base` see one message and leave; M more are sent (`send` resolves once a message is
 * kept); all reconnect at once with since/epoch. `measured` runs just before the reconnects and just
 * after the last is done, before the sockets close (the Redis rows read INFO commandstats there).
 */
async function storm(base: string, n: number, m: number, send: (text: string) => Promise<void>, measured: () => Promise<void> = async () => undefined): Promise<Storm> {
  let epoch = '';
  let offset = 0;
  let seen = 0;
  const first = await openAll(n, () => base, (_, frame) => {
    if (typeof frame.offset === 'number') {
      epoch = frame.epoch!;
      offset = frame.offset;
      seen++;
    }
  });
  await send('before');
  await until(() => seen === n, 10_000);
  await closeAll(first);
  for (let i = 0; i < m; i++) await send(`away ${i}`);
  const next = new Array<number>(n).fill(offset + 1);
  const recovered = new Array<boolean>(n).fill(false);
  let wrong = 0;
  let done = 0;
  await measured();
  const started = performance.now();
  let finished = 0;
  const second = await openAll(n, () => `${base}?since=${offset}&epoch=${epoch}`, (i, frame) => {
    if (frame.type === 'recovered') {
      if (!frame.recovered || next[i] !== offset + m + 1) wrong++;
      recovered[i] = true;
      if (++done === n) finished = performance.now();
    } else if (typeof frame.offset === 'number') {
      if (frame.offset !== next[i] || recovered[i]) wrong++;
      next[i]++;
    }
  });
  const ok = await until(() => done === n, 60_000);
  await measured();
  await closeAll(second);
  return { ok, ms: finished - started, done, wrong };
}

function stormCheck(result: Storm, n: number, m: number): string {
  return result.ok && result.wrong === 0 ? `all ${fmt(n)} recovered ${fmt(m)} messages, each once, in order` : `FAILED: ${result.done} recovered, ${result.wrong} wrong frames`;
}

/**
 * H1: N clients of one room, M messages published while they are away, all reconnect at once with
 * `since`: the time until the last one has every missed message and its `recovered` frame, and the
 * Redis commands the reconnects cost.
 */
async function recoveryStorm(): Promise<Row> {
  const { stormClients: n, stormMessages: m } = sizes;
  return withDemo(async (port, admin, redisUrl) => {
    const publisher = await createPublisher({ url: redisUrl });
    try {
      // Room history long enough for the gap (the demo's rooms keep 100).
      await publisher.setHistory('chat_storm', { size: m * 2, ttl: 3600 });
      const reads: Array<Map<string, number>> = [];
      const result = await storm(
        `ws://127.0.0.1:${port}/ws/chat/storm/`, n, m,
        async (text) => void (await publisher.groupSend('chat_storm', { type: 'chat.message', message: text })),
        async () => void reads.push(await commandStats(admin)),
      );
      const cost = delta(reads[0], reads[1]);
      return { name: 'H1 recovery storm', clients: n, messages: m, ms: result.ok ? result.ms : NaN, commands: cost.total, seen: cost.seen, check: stormCheck(result, n, m) };
    } finally {
      await publisher.close();
    }
  });
}

/**
 * H1 on the workers layer: the same storm, but with no outside publisher the missed messages are typed by
 * one client of the room (so at most the demo's 100 of room history), each kept by the primary before the
 * next: it comes back to the typist once stamped.
 */
async function workersRecoveryStorm(workers: number): Promise<Row> {
  const n = sizes.stormClients;
  const m = CHAT_HISTORY.size;
  return withWorkers(workers, async (port) => {
    const base = `ws://127.0.0.1:${port}/ws/chat/storm/`;
    let typed = 0;
    const [typist] = await openAll(1, () => base, (_, frame) => void (typeof frame.offset === 'number' && typed++));
    try {
      const result = await storm(base, n, m, async (text) => {
        const want = typed + 1;
        typist.send(JSON.stringify({ message: text }));
        await until(() => typed >= want, 10_000);
      });
      return {
        name: `H1 recovery storm, serve --workers ${workers} (no Redis)`,
        clients: n,
        messages: m,
        ms: result.ok ? result.ms : NaN,
        commands: NaN,
        seen: 'no Redis: history kept by the primary',
        check: stormCheck(result, n, m),
      };
    } finally {
      await closeAll([typist]);
    }
  });
}

/**
 * H1 for Socket.IO 4 with connection state recovery (in-memory adapter, its only form with recovery
 * here): the same shape, each client's transport closed (a network drop; a clean disconnect would
 * discard its session), M messages emitted meanwhile, all reconnect at once. No Redis: commands n/a.
 */
async function socketioRecoveryStorm(): Promise<Row> {
  const { stormClients: n, stormMessages: m } = sizes;
  const child = fork(join(__dirname, '..', 'servers', 'socketio-recovery.ts'), [], { execArgv: ['-r', TS_NODE] });
  const next = (): Promise<{ type: string; port?: number }> => new Promise((resolve) => child.once('message', resolve));
  const sockets: Socket[] = [];
  try {
    const { port } = await next();
    const got = new Array<number>(n).fill(0);
    const expected = new Array<number>(n).fill(0);
    let wrong = 0;
    for (let i = 0; i < n; i++) {
      const socket = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true });
      socket.on('m', (seq: number) => {
        if (seq !== expected[i]) wrong++;
        expected[i] = seq + 1;
        got[i]++;
      });
      sockets.push(socket);
    }
    await Promise.all(sockets.map((socket) => new Promise((resolve) => (socket.connected ? resolve(0) : socket.once('connect', () => resolve(0))))));
    child.send({ emit: 1, from: 0 });
    await next();
    await until(() => got.every((count) => count === 1), 10_000);
    await Promise.all(sockets.map((socket) => new Promise((resolve) => {
      socket.once('disconnect', resolve);
      (socket.io as unknown as { engine: { close(): void } }).engine.close();
    })));
    child.send({ emit: m, from: 1 });
    await next();
    let recovered = 0;
    for (const socket of sockets) socket.once('connect', () => void (socket.recovered && recovered++));
    const started = performance.now();
    for (const socket of sockets) socket.connect();
    const ok = await until(() => got.every((count) => count === m + 1), 60_000);
    const ms = performance.now() - started;
    return {
      name: 'H1 recovery storm, Socket.IO 4',
      clients: n,
      messages: m,
      ms: ok ? ms : NaN,
      commands: NaN,
      seen: 'no Redis (in-memory adapter)',
      check: ok && wrong === 0 && recovered === n ? `all ${fmt(n)} recovered ${fmt(m)} messages, each once, in order` : `FAILED: ${recovered} recovered, ${wrong} wrong`,
    };
  } finally {
    for (const socket of sockets) socket.close();
    child.kill();
  }
}

/**
 * H2: N named clients join one room at once: the time until every member's list (snapshot + diffs)
 * holds all N, and the Redis commands the joins cost.
 */
async function presenceJoin(): Promise<Row> {
  return withDemo(async (port, admin) => {
    const before = await commandStats(admin);
    const row = await crowdJoins(port, 'H2 presence join');
    const cost = delta(before, await commandStats(admin));
    return { ...row, commands: cost.total, seen: cost.seen };
  });
}

/** H2 on the workers layer: the presence table is in the primary, a join one IPC round trip. */
function workersPresenceJoin(workers: number): Promise<Row> {
  return withWorkers(workers, async (port) => ({
    ...(await crowdJoins(port, `H2 presence join, serve --workers ${workers} (no Redis)`)),
    seen: 'no Redis: presence kept by the primary',
  }));
}

/** N named clients join one room at once; the time until every member lists all N. */
async function crowdJoins(port: number, name: string): Promise<Row> {
  const { presenceClients: n } = sizes;
  const members = Array.from({ length: n }, () => new Set<string>());
  let full = 0;
  const started = performance.now();
  let finished = 0;
  const sockets = await openAll(n, (i) => `ws://127.0.0.1:${port}/ws/chat/crowd/?name=user${i}`, (i, frame) => {
    const set = members[i];
    const had = set.size;
    if (frame.type === 'presence_state') for (const member of frame.members as { id: string }[]) set.add(member.id);
    else if (frame.type === 'presence_diff') {
      for (const member of frame.joins!) set.add(member.id);
      for (const member of frame.leaves!) set.delete(member.id);
    } else return;
    if (had < n && set.size === n && ++full === n) finished = performance.now();
  });
  const ok = await until(() => full === n, 60_000);
  await closeAll(sockets);
  return {
    name,
    clients: n,
    messages: 0,
    ms: ok ? finished - started : NaN,
    commands: NaN,
    seen: 'n/a',
    check: ok ? `every member lists all ${fmt(n)}` : `FAILED: ${full} of ${n} members have the full list`,
  };
}

function print(rows: Row[]): void {
  console.log(
    '\nH history and presence on the chat demo (one server process on a private redis-server; the workers rows: serve --workers 2, ' +
      'no Redis, history and presence in the primary): H1 = clients of one room ' +
      'reconnect at once with since/epoch after messages were published while they were away (time from the first ' +
      'reconnect until the last has its recovered frame; every frame checked); H2 = named clients join one room at once ' +
      '(time until every member lists all of them). Redis commands: INFO commandstats delta over the reconnects or joins.',
  );
  console.log(
    table(
      ['scenario', 'clients', 'missed messages', 'ms until the last is done', 'Redis commands', 'per client', 'commands seen', 'check'],
      rows.map((r) => [r.name, fmt(r.clients), fmt(r.messages), fmt(r.ms), Number.isNaN(r.commands) ? 'n/a' : fmt(r.commands), Number.isNaN(r.commands) ? 'n/a' : fmt(r.commands / r.clients, 3), r.seen, r.check]),
    ),
  );
}

/** One run, for channelkit: its rows are the two measurements, not systems. */
export const hScenario: Scenario<Row[]> = {
  name: 'h',
  which: (systems: SystemName[]) => systems.filter((system) => system === 'channelkit'),
  run: async () => [
    await recoveryStorm(),
    await workersRecoveryStorm(2),
    await socketioRecoveryStorm(),
    await presenceJoin(),
    await workersPresenceJoin(2),
  ],
  print: (runs) => print(runs.flat()),
  profiled: false,
};
