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
import { RedisServer } from '../test/support/redis';
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
    rates: list('s3-rates', quick ? [200, 1_000, 5_000] : [100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000]),
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
  /** Marginal: least-squares slope of RSS over N/4, N/2, 3N/4 and N connections, per connection. */
  kib: number;
  /** The same slope for the V8 heap in use: the part of RSS that the server's own objects make. */
  heapKib: number;
  /** From an empty server: RSS growth from 0 to N, per connection (noisier: startup garbage gets reused). */
  kibFromEmpty: number;
  connectMs: number;
}

/** Least-squares slope of y over x. */
function slope(points: { x: number; y: number }[]): number {
  const mean = (f: (p: { x: number; y: number }) => number): number => points.reduce((sum, p) => sum + f(p), 0) / points.length;
  const mx = mean((p) => p.x);
  const my = mean((p) => p.y);
  return mean((p) => (p.x - mx) * (p.y - my)) / mean((p) => (p.x - mx) ** 2);
}

async function s1(system: SystemName): Promise<S1Row> {
  const { connections, groups } = config.s1;
  const { server, port } = await startServer(system);
  const loadgens = spawnLoadgens(connections, 1);
  try {
    const names = Array.from({ length: groups }, (_, i) => `g${i}`);
    await sleep(500);
    const empty = await server.request({ cmd: 'rss' }, 'rss');
    // Four steps, not one: a single step's RSS jumps with whatever heap pages V8 happens to commit.
    const samples: { x: number; rss: number; heap: number }[] = [];
    let connectMs = 0;
    for (let step = 1; step <= 4; step++) {
      const target = Math.round((connections * step) / 4);
      const already = samples.at(-1)?.x ?? 0;
      connectMs += await connectClients(system, server, port, loadgens, target - already, target, names);
      await sleep(500);
      const usage = await server.request({ cmd: 'rss' }, 'rss');
      samples.push({ x: target, rss: usage.rss, heap: usage.heapUsed });
    }
    return {
      system,
      kib: slope(samples.map((p) => ({ x: p.x, y: p.rss }))) / 1024,
      heapKib: slope(samples.map((p) => ({ x: p.x, y: p.heap }))) / 1024,
      kibFromEmpty: (samples[3].rss - empty.rss) / connections / 1024,
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

/** With --profile, channelkit's server (S2, S4; the first of S3's two) writes a V8 CPU profile to bench/profiles/<scenario>/. */
function profileArgs(system: SystemName, scenario: string): string[] {
  return profile && system === 'channelkit' ? ['--cpu-prof', `--cpu-prof-dir=${join(__dirname, 'profiles', scenario)}`] : [];
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
  const { server, port } = await startServer(system, profileArgs(system, 's2'));
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

// ---- S3: cross-process through Redis ----

type RedisClient = ReturnType<typeof createClient>;

interface S3Step {
  rate: number;
  /** Deliveries per group send (the clients of both servers). */
  clients: number;
  sentPerSecond: number;
  perSecond: number;
  loss: number;
  p50: number;
  p99: number;
}

interface S3Row {
  system: SystemName;
  steps: S3Step[];
  /** Redis commands per group send (INFO commandstats delta over the steps / sends), and the commands seen. */
  commandsPerSend: number;
  commands: string;
  /** Subscriptions per server process: [channels, patterns] for each of the two. */
  subscriptions: [number, number][];
}

async function commandStats(redis: RedisClient): Promise<Map<string, number>> {
  const text = await redis.info('commandstats');
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** Total SUBSCRIBE channels and PSUBSCRIBE patterns held by all Redis connections (CLIENT LIST's sub= and psub=). */
async function subscriptions(redis: RedisClient): Promise<[number, number]> {
  const text = String(await redis.sendCommand(['CLIENT', 'LIST']));
  let sub = 0;
  let psub = 0;
  for (const line of text.split('\n')) {
    sub += Number(/ sub=(\d+)/.exec(line)?.[1] ?? 0) + Number(/ ssub=(\d+)/.exec(line)?.[1] ?? 0);
    psub += Number(/ psub=(\d+)/.exec(line)?.[1] ?? 0);
  }
  return [sub, psub];
}

async function s3(system: SystemName): Promise<S3Row> {
  const { clientsPerServer, rates, stepMs, payloadBytes, stopLoss } = config.s3;
  const redis = await RedisServer.start();
  const env = { REDIS_URL: redis.url };
  const admin: RedisClient = createClient({ url: redis.url });
  admin.on('error', () => undefined);
  await admin.connect();
  const servers: ServerChild[] = [];
  const loadgens = spawnLoadgens(clientsPerServer * 2, 1);
  let publisher: Child<PublisherCommand, PublisherReply> | null = null;
  try {
    const subs: [number, number][] = [];
    let before: [number, number] = await subscriptions(admin);
    for (let i = 0; i < 2; i++) {
      const { server, port } = await startServer(system, i === 0 ? profileArgs(system, 's3') : [], env);
      servers.push(server);
      await connectClients(system, server, port, loadgens, clientsPerServer, clientsPerServer, ['bench']);
      await sleep(300);
      const now = await subscriptions(admin);
      subs.push([now[0] - before[0], now[1] - before[1]]);
      before = now;
    }
    publisher = new Child<PublisherCommand, PublisherReply>(spawn('publisher.ts', [], env, [system]), 'publisher');
    await publisher.wait('ready');
    await sleep(500);
    const clients = clientsPerServer * 2;
    const statsBefore = await commandStats(admin);
    let seq = 0;
    let sends = 0;
    const steps: S3Step[] = [];
    for (const rate of rates) {
      resetLoadgens(loadgens, seq);
      const stepped = await publisher.request({ cmd: 'step', group: 'bench', rate, durationMs: stepMs, seqStart: seq, payloadBytes }, 'stepped', stepMs + 30_000);
      seq += stepped.sent;
      sends += stepped.sent;
      const expected = stepped.sent * clients;
      const m = merged(await drain(loadgens, expected, 1500, 8_000));
      steps.push({
        rate,
        clients,
        sentPerSecond: stepped.sent / ((stepped.endUs - stepped.startUs) / 1e6),
        perSecond: m.received / ((Math.max(m.lastUs, stepped.endUs) - stepped.startUs) / 1e6),
        loss: expected === 0 ? 0 : 1 - m.received / expected,
        p50: percentile(m.hist, 0.5) / 1000,
        p99: percentile(m.hist, 0.99) / 1000,
      });
      const last = steps[steps.length - 1];
      if (last.loss > stopLoss || last.perSecond < 0.5 * last.sentPerSecond * clients) break;
      await sleep(300);
    }
    const statsAfter = await commandStats(admin);
    let commands = 0;
    const seen: string[] = [];
    for (const [name, calls] of statsAfter) {
      if (name === 'info' || name.startsWith('client')) continue; // the bench's own reads
      const delta = calls - (statsBefore.get(name) ?? 0);
      if (delta > 0) {
        commands += delta;
        seen.push(`${name.toUpperCase()} ${fmt(delta / sends, 2)}`);
      }
    }
    return { system, steps, commandsPerSend: commands / sends, commands: seen.join(', '), subscriptions: subs };
  } finally {
    if (publisher) await publisher.stop();
    await Promise.all(loadgens.map((l) => l.stop()));
    for (const server of servers) await server.stop();
    await admin.quit().catch(() => undefined);
    await redis.close();
  }
}

// ---- S4: connection churn ----

interface S4Row {
  system: SystemName;
  perSecond: number;
  failed: number;
  /** Members the server still counted 5 s after the churn stopped (leaked joins). */
  leftover: number;
}

/**
 * Source addresses: 127.0.0.1 (no explicit bind, see loadgen.ts) and n − 1 more from 127.0.0.<first> on (the
 * whole 127/8 is loopback on Linux). S4 and S5 use different ones, so TIME_WAIT left by one does not crowd the next.
 */
const sourceAddresses = (n: number, first: number): string[] => ['127.0.0.1', ...Array.from({ length: n - 1 }, (_, i) => `127.0.0.${first + i}`)];

async function s4(system: SystemName): Promise<S4Row> {
  const { durationMs, concurrency } = config.s4;
  const { server, port } = await startServer(system, profileArgs(system, 's4'));
  const loadgens = spawnLoadgens(1, 1);
  try {
    const reply = await loadgens[0].request(
      { cmd: 'churn', port, paths: [pathFor(system, 'bench')], mode: system === 'socketio' ? 'sio' : 'ws', localAddresses: sourceAddresses(8, 2), concurrency, durationMs },
      'churned',
      durationMs + 60_000,
    );
    let leftover = 0;
    const deadline = Date.now() + 5000;
    for (;;) {
      leftover = (await server.request({ cmd: 'count' }, 'count')).members;
      if (leftover === 0 || Date.now() > deadline) break;
      await sleep(100);
    }
    return { system, perSecond: reply.cycles / (reply.ms / 1000), failed: reply.failed, leftover };
  } finally {
    await Promise.all(loadgens.map((l) => l.stop()));
    await server.stop();
  }
}

// ---- S5: big broadcast ----

interface S5Row {
  system: SystemName;
  target: number;
  connected: number;
  failed: number;
  connectMs: number;
  /** Per round: ms from the publish to the last client's receipt; and the median client's. */
  lastMs: number[];
  p50Ms: number[];
  received: number[];
}

/** The hard fd limit of this process, which the servers (forked from it) inherit. */
function fdHardLimit(): number {
  try {
    return Number(execSync('ulimit -Hn', { shell: '/bin/sh', encoding: 'utf8' }).trim()) || Infinity;
  } catch {
    return Infinity;
  }
}

function s5Plan(): { count: number; capped: boolean; limit: number } {
  const limit = fdHardLimit();
  // The server process needs one fd per socket plus its own (stdio, IPC, epoll, the listener): keep 500 spare.
  const cap = Number.isFinite(limit) ? limit - 500 : Infinity;
  const count = Math.min(config.s5.target, cap);
  return { count, capped: count < config.s5.target, limit };
}

async function s5(system: SystemName): Promise<S5Row> {
  const { count } = s5Plan();
  const { server, port } = await startServer(system);
  const loadgens = spawnLoadgens(count, Math.max(2, Math.ceil(count / SOCKETS_PER_LOADGEN)));
  try {
    const addresses = sourceAddresses(Math.max(loadgens.length, Math.ceil(count / 5_000) + 1), 20);
    const c = await connectSome(system, server, port, loadgens, count, count, ['bench'], { localAddresses: addresses, tolerateFailures: true });
    await sleep(1000);
    const row: S5Row = { system, target: count, connected: c.members, failed: c.failed, connectMs: c.ms, lastMs: [], p50Ms: [], received: [] };
    for (let round = 0; round < config.s5.rounds; round++) {
      resetLoadgens(loadgens, round);
      await sleep(200);
      const sent = await server.request({ cmd: 'broadcast', group: 'bench', seq: round, payloadBytes: 64 }, 'broadcasted');
      const m = merged(await drain(loadgens, c.members, 3000, 60_000));
      row.lastMs.push((m.lastUs - sent.sendUs) / 1000);
      row.p50Ms.push(percentile(m.hist, 0.5) / 1000);
      row.received.push(m.received);
      await sleep(500);
    }
    return row;
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
  console.log(`\nS1 idle memory: ${fmt(config.s1.connections)} connections in ${config.s1.groups} groups; server memory growth per connection`);
  console.log(
    '(marginal: least-squares slope over N/4, N/2, 3N/4 and N connections, after GC; "from empty": RSS from 0 to N, noisier ' +
      'because freed startup memory gets reused; heap: V8 heap in use, the part of RSS the server\'s objects make)',
  );
  console.log(
    table(
      ['system', 'RSS KiB / conn (marginal)', 'RSS KiB / conn (from empty)', 'heap KiB / conn', 'connect time (s), 64 in flight', 'channelkit / this (RSS)', 'channelkit / this (heap)'],
      rows.map((r) => [
        LABEL[r.system],
        fmt(r.kib, 2),
        fmt(r.kibFromEmpty, 2),
        fmt(r.heapKib, 2),
        fmt(r.connectMs / 1000, 1),
        ck ? ratio(ck.kib, r.kib) : 'n/a',
        ck ? ratio(ck.heapKib, r.heapKib) : 'n/a',
      ]),
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

const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length === 0 ? NaN : v[Math.floor((v.length - 1) / 2)];
};

/** A step is held when nothing was lost and deliveries kept pace with the sends (≥ 90%), not merely arrived late. */
const held = (step: S3Step): boolean => step.loss === 0 && step.perSecond >= 0.9 * step.sentPerSecond * step.clients;

/** The highest offered rate held (and every lower step held too), or undefined. */
function zeroLoss(row: S3Row): S3Step | undefined {
  let best: S3Step | undefined;
  for (const step of row.steps) {
    if (!held(step)) break;
    best = step;
  }
  return best;
}

function printS3(rows: S3Row[]): void {
  const c = config.s3;
  const clients = c.clientsPerServer * 2;
  console.log(
    `\nS3 cross-process: one private redis-server, two server processes with ${fmt(c.clientsPerServer)} clients each in one group, ` +
      `an outside publisher process at stepped offered rates for ${c.stepMs / 1000} s each (${c.payloadBytes}-byte payloads; ` +
      `a step losing over ${c.stopLoss * 100}% or delivering under half the offered rate ends the system's run). Each group send is ${fmt(clients)} deliveries. ` +
      `Loss: deliveries not there within 1.5 s of the last movement (8 s at most) after the step. ` +
      `Held: zero loss and delivered ≥ 90% of sent × clients per second (kept pace, not merely arrived late).`,
  );
  const stepRows: string[][] = [];
  for (const r of rows) {
    for (const st of r.steps) {
      stepRows.push([
        LABEL[r.system],
        fmt(st.rate),
        fmt(st.sentPerSecond),
        fmt(st.perSecond),
        `${((st.perSecond / (st.sentPerSecond * st.clients)) * 100).toFixed(0)}%`,
        `${(st.loss * 100).toFixed(2)}%`,
        fmt(st.p50, 2),
        fmt(st.p99, 2),
        held(st) ? 'yes' : 'no',
      ]);
    }
  }
  console.log(table(['system', 'offered group sends/s', 'sent/s', 'delivered msgs/s', 'delivered / sent×clients', 'loss', 'p50 ms', 'p99 ms', 'held'], stepRows));
  const ck = rows.find((r) => r.system === 'channelkit');
  const ckBest = ck ? zeroLoss(ck) : undefined;
  console.log('\nS3 summary and Redis cost (commands per group send: INFO commandstats delta over all steps / group sends; subscriptions per server process from CLIENT LIST)');
  console.log(
    table(
      [
        'system',
        'highest group sends/s held (zero loss)',
        'delivered msgs/s there',
        'p99 ms there',
        'Redis commands / group send',
        'subscriptions per process (channels + patterns)',
        'channelkit / this (zero-loss msgs/s)',
        'channelkit / this (p99 at the highest rate both held)',
      ],
      rows.map((r) => {
        const best = zeroLoss(r);
        let common = 'n/a';
        if (ck && best && ckBest) {
          const rate = Math.min(best.rate, ckBest.rate);
          const a = ck.steps.find((st) => st.rate === rate);
          const b = r.steps.find((st) => st.rate === rate);
          if (a && b) common = `${ratio(a.p99, b.p99)} at ${fmt(rate)}/s`;
        }
        return [
          LABEL[r.system],
          best ? fmt(best.rate) : 'none',
          best ? fmt(best.perSecond) : 'n/a',
          best ? fmt(best.p99, 2) : 'n/a',
          `${fmt(r.commandsPerSend, 2)} (${r.commands || 'none'})`,
          r.subscriptions.map(([sub, psub]) => `${sub} + ${psub}`).join('; '),
          ck && best && ckBest ? ratio(ckBest.perSecond, best.perSecond) : 'n/a',
          common,
        ];
      }),
    ),
  );
}

function printS4(rows: S4Row[]): void {
  const c = config.s4;
  const ck = rows.find((r) => r.system === 'channelkit');
  console.log(
    `\nS4 connection churn: ${c.concurrency} loops for ${c.durationMs / 1000} s of connect, handshake, route, join (channelkit: the consumer's groupAdd; ` +
      `Socket.IO: until its CONNECT packet), close frame, the server's FIN answered (leave); source addresses 127.0.0.1 and 127.0.0.2-8`,
  );
  console.log(
    table(
      ['system', 'connects+disconnects /s', 'failed', 'members left 5 s later', 'channelkit / this'],
      rows.map((r) => [LABEL[r.system], fmt(r.perSecond), fmt(r.failed), fmt(r.leftover), ck ? ratio(ck.perSecond, r.perSecond) : 'n/a']),
    ),
  );
}

function printS5(rows: S5Row[]): void {
  const plan = s5Plan();
  console.log(
    `\nS5 big broadcast: aim ${fmt(config.s5.target)} idle clients in one group in one server process; ` +
      (plan.capped
        ? `CAPPED at ${fmt(plan.count)}: the process fd hard limit here is ${fmt(plan.limit)} (one fd per socket), so ${fmt(config.s5.target)} cannot be reached in one process on this machine. `
        : '') +
      `Load generators of at most ${fmt(SOCKETS_PER_LOADGEN)} sockets over several 127.0.0.x source addresses; ` +
      `${config.s5.rounds} round(s) of one 64-byte message to all: time from the publish until the last client has it`,
  );
  const ck = rows.find((r) => r.system === 'channelkit');
  console.log(
    table(
      ['system', 'clients connected', 'failed', 'connect time (s)', 'last client has it (ms), median', 'each round (ms)', 'median client (ms)', 'delivered', 'channelkit / this (last ms)'],
      rows.map((r) => [
        LABEL[r.system],
        `${fmt(r.connected)}${plan.capped ? ' (fd cap)' : ''}`,
        fmt(r.failed),
        fmt(r.connectMs / 1000, 1),
        fmt(median(r.lastMs), 1),
        r.lastMs.map((x) => fmt(x, 1)).join(' / '),
        fmt(median(r.p50Ms), 1),
        r.received.map((x) => fmt(x)).join(' / '),
        ck ? ratio(median(ck.lastMs), median(r.lastMs)) : 'n/a',
      ]),
    ),
  );
}

async function main(): Promise<void> {
  const os = require('node:os') as typeof import('node:os');
  const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`channelkit bench${quick ? ' (quick)' : ''}: node ${process.version}, ${os.cpus().length} CPUs, systems: ${systems.join(', ')}; load average before: ${load()}`);
  process.on('exit', () => console.log(`\nload average after: ${load()} (other work on the machine skews the figures; compare ratios within one run)`));
  await scenario('s1', systems, s1, printS1);
  await scenario('s2', systems, s2, printS2);
  if (profile && scenarios.includes('s2') && systems.includes('channelkit')) console.log('\n' + summarizeProfile(join(__dirname, 'profiles', 's2'), 25));
  // The ceiling probe has no cross-process form.
  await scenario('s3', systems.filter((x) => x !== 'ceiling'), s3, printS3);
  if (profile && scenarios.includes('s3') && systems.includes('channelkit')) console.log('\n' + summarizeProfile(join(__dirname, 'profiles', 's3'), 25));
  await scenario('s4', systems, s4, printS4);
  if (profile && scenarios.includes('s4') && systems.includes('channelkit')) console.log('\n' + summarizeProfile(join(__dirname, 'profiles', 's4'), 25));
  await scenario('s5', systems, s5, printS5);
}

/** Runs one scenario for each system in turn (never two at once: they would share the 2 cores) and prints its table. */
async function scenario<System extends string, Row>(name: string, which: System[], run: (system: System) => Promise<Row>, print: (rows: Row[]) => void): Promise<void> {
  if (!scenarios.includes(name)) return;
  const rows: Row[] = [];
  for (const system of which) {
    process.stderr.write(`${name.toUpperCase()} ${system}...\n`);
    rows.push(await run(system));
  }
  print(rows);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
