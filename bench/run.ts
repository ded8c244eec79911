// `npm run bench [-- --quick] [--only=channelkit,naive] [--scenarios=s1,s2,s3,s4,s5] [--profile]`
// Each system is a child process server on a free loopback port; the load generators are child processes too.
import { type ChildProcess, execSync, fork } from 'node:child_process';
import { join } from 'node:path';
import {
  HIST_SIZE,
  type LoadgenCommand,
  type LoadgenReply,
  type ServerCommand,
  type ServerReply,
  addPacked,
  percentile,
} from './protocol';
import { summarizeProfile } from './profile-top';
import type { PublisherCommand, PublisherReply } from './publisher';
import { BenchRedis } from './redis';
import { createClient } from 'redis';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const hit = argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (hit === undefined) return undefined;
  return hit.includes('=') ? hit.slice(hit.indexOf('=') + 1) : '';
};
const quick = flag('quick') !== undefined;
const profile = flag('profile') !== undefined;

const SYSTEMS = ['channelkit', 'naive', 'socketio', 'ceiling'] as const;
type SystemName = (typeof SYSTEMS)[number];
const LABEL: Record<SystemName, string> = {
  channelkit: 'channelkit',
  naive: 'naive raw ws',
  socketio: 'Socket.IO 4',
  ceiling: 'ceiling probe',
};
const systems = (flag('only')?.split(',') ?? [...SYSTEMS]) as SystemName[];
const scenarios = flag('scenarios')?.split(',') ?? ['s1', 's2', 's3', 's4', 's5'];
const list = (name: string, fallback: number[]): number[] => flag(name)?.split(',').map(Number) ?? fallback;

const config = {
  s1: { connections: Number(flag('s1-connections') ?? (quick ? 2_000 : 10_000)), groups: 100 },
  s2: {
    clients: Number(flag('s2-clients') ?? 1_000),
    durationMs: Number(flag('s2-seconds') ?? (quick ? 3 : 10)) * 1000,
    batch: Number(flag('batch') ?? 1),
    turnMs: Number(flag('turn-ms') ?? 20),
    payloadBytes: 64,
    maxBacklogBytes: Number(flag('max-backlog') ?? 64 * 1024),
    loadgens: Number(flag('loadgens') ?? 1),
    /** Messages per client in flight at most (end-to-end credit); 0 turns credit off. */
    window: Number(flag('window') ?? 64),
    warmupMs: Number(flag('warmup-ms') ?? (quick ? 500 : 1500)),
  },
  s3: {
    clientsPerServer: Number(flag('s3-clients') ?? (quick ? 200 : 500)),
    rates: list('s3-rates', quick ? [1_000, 5_000] : [500, 1_000, 2_000, 5_000, 10_000, 20_000]),
    stepMs: Number(flag('s3-seconds') ?? (quick ? 1.5 : 4)) * 1000,
    payloadBytes: 64,
    /** A step losing more than this ends the system's run (the next steps would only lose more). */
    stopLoss: 0.01,
  },
  s4: {
    durationMs: Number(flag('s4-seconds') ?? (quick ? 2 : 5)) * 1000,
    concurrency: Number(flag('s4-concurrency') ?? 32),
  },
  s5: {
    target: Number(flag('s5-connections') ?? (quick ? 5_000 : 100_000)),
    rounds: quick ? 1 : 3,
  },
};
/** Sockets per load generator: under the 20,000 fd hard limit with room to spare. */
const SOCKETS_PER_LOADGEN = 9_000;

const TS_NODE = require.resolve('ts-node/register/transpile-only');

/** A child process spoken to over IPC: request() sends a command and waits for a reply of one type. */
class Child<C, R extends { type: string }> {
  private readonly inbox: R[] = [];
  private waiters: { type: string; resolve: (r: R) => void }[] = [];
  readonly exited: Promise<number | null>;
  /** Receives 'progress' messages instead of the inbox (the credit relay). */
  onProgress: ((message: R) => void) | null = null;

  constructor(readonly proc: ChildProcess, readonly name: string) {
    proc.on('message', (message: R) => {
      if (message.type === 'progress') {
        this.onProgress?.(message);
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === message.type);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(message);
      else this.inbox.push(message);
    });
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    void this.exited.then((code) => {
      for (const w of this.waiters) w.resolve({ type: 'exit', code } as unknown as R);
      this.waiters = [];
    });
  }

  wait<T extends R['type']>(type: T, timeoutMs = 60_000): Promise<Extract<R, { type: T }>> {
    const i = this.inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as Extract<R, { type: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        type,
        resolve: (r) => {
          clearTimeout(timer);
          if (r.type !== type) reject(new Error(`${this.name} exited`));
          else resolve(r as Extract<R, { type: T }>);
        },
      });
    });
  }

  send(command: C): void {
    if (this.proc.connected) this.proc.send(command as object);
  }

  request<T extends R['type']>(command: C, type: T, timeoutMs?: number): Promise<Extract<R, { type: T }>> {
    const reply = this.wait(type, timeoutMs);
    this.send(command);
    return reply;
  }

  async stop(): Promise<void> {
    this.send({ cmd: 'exit' } as C);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

type ServerChild = Child<ServerCommand, ServerReply>;
type LoadgenChild = Child<LoadgenCommand, LoadgenReply>;

function spawn(file: string, extraArgs: string[] = [], env: Record<string, string> = {}, args: string[] = []): ChildProcess {
  return fork(join(__dirname, file), args, {
    execArgv: ['-r', TS_NODE, '--expose-gc', ...extraArgs],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ...env },
  });
}

async function startServer(
  system: SystemName,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<{ server: ServerChild; port: number }> {
  const server: ServerChild = new Child(spawn(`servers/${system}.ts`, extraArgs, env), system);
  const ready = await server.wait('ready', 60_000);
  return { server, port: ready.port };
}

function pathFor(system: SystemName, group: string): string {
  switch (system) {
    case 'channelkit':
      return `/ws/bench/${group}/`;
    case 'socketio':
      return `/socket.io/?EIO=4&transport=websocket&room=${group}`;
    default:
      return `/${group}/`;
  }
}

function spawnLoadgens(count: number, minimum: number): LoadgenChild[] {
  const n = Math.max(minimum, Math.ceil(count / SOCKETS_PER_LOADGEN));
  return Array.from({ length: n }, (_, i) => new Child<LoadgenCommand, LoadgenReply>(spawn('loadgen.ts'), `loadgen${i}`));
}

/** Connects `count` more clients spread over the load generators; resolves once the server counts `members` joined. */
async function connectClients(
  system: SystemName,
  server: ServerChild,
  port: number,
  children: LoadgenChild[],
  count: number,
  members: number,
  groups: string[],
  options: { localAddresses?: string[]; tolerateFailures?: boolean } = {},
): Promise<number> {
  return (await connectSome(system, server, port, children, count, members, groups, options)).ms;
}

async function connectSome(
  system: SystemName,
  server: ServerChild,
  port: number,
  children: LoadgenChild[],
  count: number,
  members: number,
  groups: string[],
  { localAddresses = ['127.0.0.1'], tolerateFailures = false }: { localAddresses?: string[]; tolerateFailures?: boolean } = {},
): Promise<{ ms: number; ok: number; failed: number; members: number }> {
  const n = children.length;
  const paths = groups.map((g) => pathFor(system, g));
  const replies = await Promise.all(
    children.map((child, i) => {
      const share = Math.floor(count / n) + (i < count % n ? 1 : 0);
      // Each generator its own slice of the source addresses (ephemeral ports are per source address).
      const mine = localAddresses.filter((_, j) => localAddresses.length < n || j % n === i);
      return child.request(
        { cmd: 'connect', port, paths, count: share, mode: system === 'socketio' ? 'sio' : 'ws', localAddresses: mine, concurrency: 64 },
        'connected',
        300_000,
      );
    }),
  );
  const failed = replies.reduce((s, r) => s + r.failed, 0);
  if (failed > 0 && !tolerateFailures) throw new Error(`${system}: ${failed} of ${count} connections failed`);
  const want = members - failed;
  const deadline = Date.now() + 60_000;
  let joined = 0;
  for (;;) {
    joined = (await server.request({ cmd: 'count' }, 'count')).members;
    if (joined >= want) break;
    if (Date.now() > deadline) {
      if (tolerateFailures) break;
      throw new Error(`${system}: only ${joined} of ${members} joined`);
    }
    await sleep(100);
  }
  return { ms: Math.max(...replies.map((r) => r.ms)), ok: count - failed, failed, members: joined };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- S1: idle memory ----

interface S1Row {
  system: SystemName;
  /** Marginal: RSS growth from N/2 to N connections, per connection. */
  kib: number;
  /** From an empty server: RSS growth from 0 to N, per connection (noisier: startup garbage gets reused). */
  kibFromEmpty: number;
  connectMs: number;
}

async function s1(system: SystemName): Promise<S1Row> {
  const { connections, groups } = config.s1;
  const { server, port } = await startServer(system);
  const loadgens = spawnLoadgens(connections, 1);
  try {
    const names = Array.from({ length: groups }, (_, i) => `g${i}`);
    await sleep(500);
    const empty = await server.request({ cmd: 'rss' }, 'rss');
    const half = Math.floor(connections / 2);
    let connectMs = await connectClients(system, server, port, loadgens, half, half, names);
    await sleep(500);
    const middle = await server.request({ cmd: 'rss' }, 'rss');
    connectMs += await connectClients(system, server, port, loadgens, connections - half, connections, names);
    await sleep(1000);
    const full = await server.request({ cmd: 'rss' }, 'rss');
    return {
      system,
      kib: (full.rss - middle.rss) / (connections - half) / 1024,
      kibFromEmpty: (full.rss - empty.rss) / connections / 1024,
      connectMs,
    };
  } finally {
    await Promise.all(loadgens.map((l) => l.stop()));
    await server.stop();
  }
}

// ---- S2: local fan-out ----

interface S2Row {
  system: SystemName;
  published: number;
  perSecond: number;
  p50: number;
  p99: number;
  loss: number;
  pausedShare: number;
  meanBatch: number;
  disorder: number;
}

let epochs = 0;

/** Zeroes the load generators' counters; messages numbered below `minSeq` count as stale from now on. */
function resetLoadgens(loadgens: LoadgenChild[], minSeq: number): number {
  const epoch = ++epochs;
  for (const l of loadgens) l.send({ cmd: 'reset', minSeq, epoch });
  return epoch;
}

type Stats = Extract<LoadgenReply, { type: 'stats' }>;

/** Polls the load generators until `expected` deliveries arrived, nothing moved for `stillMs`, or `maxMs` passed. */
async function drain(loadgens: LoadgenChild[], expected: number, stillMs = 2000, maxMs = 120_000): Promise<Stats[]> {
  let stats: Stats[] = [];
  let last = -1;
  let still = Date.now();
  const deadline = Date.now() + maxMs;
  for (;;) {
    stats = await Promise.all(loadgens.map((l) => l.request({ cmd: 'stats' }, 'stats')));
    const got = stats.reduce((s, r) => s + r.received, 0);
    if (got >= expected) break;
    if (got !== last) {
      last = got;
      still = Date.now();
    } else if (Date.now() - still > stillMs) break;
    if (Date.now() > deadline) break;
    await sleep(50);
  }
  return stats;
}

function merged(stats: Stats[]): { received: number; lastUs: number; hist: Float64Array; disorder: number } {
  const hist = new Float64Array(HIST_SIZE);
  for (const r of stats) addPacked(hist, r.hist);
  return {
    received: stats.reduce((s, r) => s + r.received, 0),
    lastUs: Math.max(...stats.map((r) => r.lastUs)),
    hist,
    disorder: stats.reduce((s, r) => s + r.malformed, 0),
  };
}

/** One S2 publish run with end-to-end credit: load generators report progress, the runner relays it to the server. */
async function publishWithCredit(
  server: ServerChild,
  loadgens: LoadgenChild[],
  durationMs: number,
  seqStart: number,
): Promise<Extract<ServerReply, { type: 'published' }>> {
  const { clients, batch, turnMs, payloadBytes, maxBacklogBytes, window } = config.s2;
  const epoch = resetLoadgens(loadgens, seqStart);
  const latest = loadgens.map(() => 0);
  loadgens.forEach((l, i) => {
    l.onProgress = (message) => {
      if (message.type !== 'progress' || message.epoch !== epoch) return;
      latest[i] = message.received;
      server.send({ cmd: 'credit', received: latest.reduce((a, b) => a + b, 0) });
    };
    l.send({ cmd: 'progress', intervalMs: window > 0 ? 2 : 0 });
  });
  try {
    return await server.request(
      { cmd: 'publish', group: 'bench', durationMs, batch, turnMs, payloadBytes, maxBacklogBytes, seqStart, window, clients },
      'published',
      durationMs + 60_000,
    );
  } finally {
    for (const l of loadgens) {
      l.send({ cmd: 'progress', intervalMs: 0 });
      l.onProgress = null;
    }
  }
}

async function s2(system: SystemName): Promise<S2Row> {
  const { clients, durationMs, loadgens: lg, warmupMs } = config.s2;
  const extra = profile && system === 'channelkit' ? ['--cpu-prof', `--cpu-prof-dir=${join(__dirname, 'profiles')}`] : [];
  const { server, port } = await startServer(system, extra);
  const loadgens = spawnLoadgens(clients, lg);
  try {
    await connectClients(system, server, port, loadgens, clients, clients, ['bench']);
    await sleep(300);
    // Warm-up: the same publishing, not measured (JIT, buffers, TCP windows).
    let seq = 0;
    if (warmupMs > 0) {
      const warm = await publishWithCredit(server, loadgens, warmupMs, 0);
      await drain(loadgens, warm.messages * clients, 1000, 10_000);
      seq = warm.messages;
    }
    const published = await publishWithCredit(server, loadgens, durationMs, seq);
    const expected = published.messages * clients;
    const m = merged(await drain(loadgens, expected));
    return {
      system,
      published: published.messages,
      perSecond: m.received / ((m.lastUs - published.startUs) / 1e6),
      p50: percentile(m.hist, 0.5) / 1000,
      p99: percentile(m.hist, 0.99) / 1000,
      loss: expected === 0 ? 0 : 1 - m.received / expected,
      pausedShare: published.turns === 0 ? 0 : published.pausedTurns / published.turns,
      meanBatch: published.meanBatch,
      disorder: m.disorder,
    };
  } finally {
    await Promise.all(loadgens.map((l) => l.stop()));
    await server.stop();
  }
}

// ---- printing ----

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
  return [line(headers), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 1) + '-' : '-'.repeat(w + 1) + ':')).join('|') + '|', ...rows.map(line)].join('\n');
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');
const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : 'n/a');

function printS1(rows: S1Row[]): void {
  const ck = rows.find((r) => r.system === 'channelkit');
  console.log(`\nS1 idle memory: ${fmt(config.s1.connections)} connections in ${config.s1.groups} groups; server RSS growth per connection`);
  console.log('(marginal: from N/2 to N connections, after GC; "from empty": from 0 to N, noisier because freed startup memory gets reused)');
  console.log(
    table(
      ['system', 'KiB / connection (marginal)', 'KiB / connection (from empty)', 'connect time (s), 64 in flight', 'channelkit / this (marginal KiB)'],
      rows.map((r) => [LABEL[r.system], fmt(r.kib, 1), fmt(r.kibFromEmpty, 1), fmt(r.connectMs / 1000, 1), ck ? ratio(ck.kib, r.kib) : 'n/a']),
    ),
  );
}

function printS2(rows: S2Row[]): void {
  const ck = rows.find((r) => r.system === 'channelkit');
  const c = config.s2;
  console.log(
    `\nS2 local fan-out: ${fmt(c.clients)} clients in one group, in-process publisher for ${c.durationMs / 1000} s after a ${c.warmupMs / 1000} s warm-up ` +
      `(batch adapted to ~${c.turnMs} ms publishing turns; end-to-end credit: at most ${c.window} messages per client sent and not yet received; ` +
      `pause while a socket has > ${c.maxBacklogBytes / 1024} KiB queued), ${c.payloadBytes}-byte payloads`,
  );
  console.log(
    table(
      ['system', 'delivered msgs/s', 'p50 ms', 'p99 ms', 'loss', 'published', 'mean batch', 'paused turns', 'channelkit / this (msgs/s)', 'channelkit / this (p99)'],
      rows.map((r) => [
        LABEL[r.system],
        fmt(r.perSecond),
        fmt(r.p50, 2),
        fmt(r.p99, 2),
        `${(r.loss * 100).toFixed(2)}%`,
        fmt(r.published),
        fmt(r.meanBatch, 1),
        `${(r.pausedShare * 100).toFixed(0)}%`,
        ck ? ratio(ck.perSecond, r.perSecond) : 'n/a',
        ck ? ratio(ck.p99, r.p99) : 'n/a',
      ]),
    ),
  );
  const disorder = rows.filter((r) => r.disorder > 0);
  for (const r of disorder) console.log(`  warning: ${LABEL[r.system]} delivered ${r.disorder} messages out of order or twice`);
}

async function main(): Promise<void> {
  console.log(`channelkit bench${quick ? ' (quick)' : ''}: node ${process.version}, ${require('node:os').cpus().length} CPUs, systems: ${systems.join(', ')}`);
  if (scenarios.includes('s1')) {
    const rows: S1Row[] = [];
    for (const system of systems) {
      process.stderr.write(`S1 ${system}...\n`);
      rows.push(await s1(system));
    }
    printS1(rows);
  }
  if (scenarios.includes('s2')) {
    const rows: S2Row[] = [];
    for (const system of systems) {
      process.stderr.write(`S2 ${system}...\n`);
      rows.push(await s2(system));
    }
    printS2(rows);
    if (profile) console.log('\n' + summarizeProfile(join(__dirname, 'profiles'), 25));
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
