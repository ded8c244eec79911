// `npm run bench [-- --quick] [--only=channelkit,naive] [--scenarios=s1,s2] [--profile]`
// Each system is a child process server on a free loopback port; the load generators are child processes too.
import { type ChildProcess, fork } from 'node:child_process';
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
const scenarios = flag('scenarios')?.split(',') ?? ['s1', 's2'];

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

  constructor(readonly proc: ChildProcess, readonly name: string) {
    proc.on('message', (message: R) => {
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

function spawn(file: string, extraArgs: string[] = []): ChildProcess {
  return fork(join(__dirname, file), [], {
    execArgv: ['-r', TS_NODE, '--expose-gc', ...extraArgs],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
  });
}

async function startServer(system: SystemName, extraArgs: string[] = []): Promise<{ server: ServerChild; port: number }> {
  const server: ServerChild = new Child(spawn(`servers/${system}.ts`, extraArgs), system);
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
): Promise<number> {
  const n = children.length;
  const paths = groups.map((g) => pathFor(system, g));
  const replies = await Promise.all(
    children.map((child, i) => {
      const share = Math.floor(count / n) + (i < count % n ? 1 : 0);
      return child.request(
        { cmd: 'connect', port, paths, count: share, mode: system === 'socketio' ? 'sio' : 'ws', localAddresses: ['127.0.0.1'], concurrency: 64 },
        'connected',
        180_000,
      );
    }),
  );
  const failed = replies.reduce((s, r) => s + r.failed, 0);
  if (failed > 0) throw new Error(`${system}: ${failed} of ${count} connections failed`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const reply = await server.request({ cmd: 'count' }, 'count');
    if (reply.members >= members) break;
    if (Date.now() > deadline) throw new Error(`${system}: only ${reply.members} of ${members} joined`);
    await sleep(100);
  }
  return Math.max(...replies.map((r) => r.ms));
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

async function s2(system: SystemName): Promise<S2Row> {
  const { clients, durationMs, batch, turnMs, payloadBytes, maxBacklogBytes, loadgens: lg } = config.s2;
  const extra = profile && system === 'channelkit' ? ['--cpu-prof', `--cpu-prof-dir=${join(__dirname, 'profiles')}`] : [];
  const { server, port } = await startServer(system, extra);
  const loadgens = spawnLoadgens(clients, lg);
  try {
    await connectClients(system, server, port, loadgens, clients, clients, ['bench']);
    await sleep(300);
    const published = await server.request(
      { cmd: 'publish', group: 'bench', durationMs, batch, turnMs, payloadBytes, maxBacklogBytes },
      'published',
      durationMs + 60_000,
    );
    const expected = published.messages * clients;
    // Drain: wait until every delivery arrived, or nothing moved for 2 s.
    let stats: Extract<LoadgenReply, { type: 'stats' }>[] = [];
    let last = -1;
    let still = Date.now();
    for (;;) {
      stats = await Promise.all(loadgens.map((l) => l.request({ cmd: 'stats' }, 'stats')));
      const got = stats.reduce((s, r) => s + r.received, 0);
      if (got >= expected) break;
      if (got !== last) {
        last = got;
        still = Date.now();
      } else if (Date.now() - still > 2000) break;
      await sleep(200);
    }
    const received = stats.reduce((s, r) => s + r.received, 0);
    const lastUs = Math.max(...stats.map((r) => r.lastUs));
    const hist = new Float64Array(HIST_SIZE);
    for (const r of stats) addPacked(hist, r.hist);
    return {
      system,
      published: published.messages,
      perSecond: received / ((lastUs - published.startUs) / 1e6),
      p50: percentile(hist, 0.5) / 1000,
      p99: percentile(hist, 0.99) / 1000,
      loss: expected === 0 ? 0 : 1 - received / expected,
      pausedShare: published.turns === 0 ? 0 : published.pausedTurns / published.turns,
      meanBatch: published.meanBatch,
      disorder: stats.reduce((s, r) => s + r.malformed, 0),
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
    `\nS2 local fan-out: ${fmt(c.clients)} clients in one group, in-process publisher for ${c.durationMs / 1000} s ` +
      `(batch adapted to ~${c.turnMs} ms publishing turns, pause while a socket has > ${c.maxBacklogBytes / 1024} KiB queued), ${c.payloadBytes}-byte payloads`,
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
