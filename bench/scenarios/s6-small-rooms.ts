// S6 many small rooms: thousands of 4-member rooms over two server processes and one private Redis, group sends
// spread over the rooms by an outside publisher at stepped rates; rooms spread over the processes, or each room on
// one process (room affinity). The highest rate held, and what a send costs the servers and Redis.
import { BenchRedis } from './bench-redis';
import { poll } from '../../test/support/wait';
import { Child, type LoadgenChild, type ServerChild, spawn } from '../child';
import { drain, merged, pathFor, profileArgs, resetLoadgens, type Scenario, sleep, spawnLoadgens, startServer } from '../harness';
import { LABEL, type SystemName, config } from '../options';
import { percentile } from '../protocol';
import type { PublisherCommand, PublisherReply } from '../publisher';
import { fmt, ratio, table } from '../table';
import { type RedisClient, subscriptions } from './redis-cost';

type Layout = 'spread' | 'affinity';

/** How long the servers' idle CPU is read, with every client connected and nothing sent. */
const IDLE_MS = 1000;

interface S6Step {
  rate: number;
  sent: number;
  sentPerSecond: number;
  perSecond: number;
  loss: number;
  p99: number;
  /** Messages that arrived twice or out of order (per client). */
  disorder: number;
  /** CPU time of all server processes over the step and its drain, µs; and of each. */
  serverCpuUs: number;
  processCpuUs: number[];
  /** redis-server's CPU time (INFO CPU, user + sys) over the step and its drain, µs. */
  redisCpuUs: number;
  /** Deliveries that arrived. */
  received: number;
  /** Wall time of the step and its drain, µs (to take the servers' idle CPU out). */
  spanUs: number;
}

interface S6Row {
  system: SystemName;
  rooms: number;
  layout: Layout;
  processes: number;
  steps: S6Step[];
  /** Subscriptions per server process: [channels, patterns]. */
  subscriptions: [number, number][];
  /** CPU µs per second of all server processes with every client connected and nothing sent (timers, pings). */
  idleCpuUsPerSecond: number;
}

/** Which process member `j` of room `i` connects to. Spread: the members go round the processes; affinity: all on one. */
const processOf = (layout: Layout, room: number, member: number, processes: number): number =>
  layout === 'spread' ? (room + member) % processes : room % processes;

async function redisCpuUs(admin: RedisClient): Promise<number> {
  const text = await admin.info('cpu');
  const read = (field: string): number => Number(new RegExp(`${field}:([\\d.]+)`).exec(text)?.[1] ?? NaN);
  return (read('used_cpu_sys') + read('used_cpu_user')) * 1e6;
}

async function processCpuUs(servers: ServerChild[]): Promise<number[]> {
  const replies = await Promise.all(servers.map((s) => s.request({ cmd: 'cpu' }, 'cpu')));
  return replies.map((r) => r.user + r.system);
}

async function serverCpuUs(servers: ServerChild[]): Promise<number> {
  return (await processCpuUs(servers)).reduce((a, b) => a + b, 0);
}

/**
 * Connects one client per entry of `groups` to `server`, the list dealt over the load generators (each gets its own
 * slice: connectSome would give every generator the same first paths), and waits until the server counts them all.
 */
async function connectRooms(system: SystemName, server: ServerChild, port: number, loadgens: LoadgenChild[], groups: string[]): Promise<void> {
  const n = loadgens.length;
  const paths = groups.map((g) => pathFor(system, g));
  const replies = await Promise.all(
    loadgens.map((l, i) => {
      const mine = paths.filter((_, j) => j % n === i);
      return l.request(
        { cmd: 'connect', port, paths: mine, count: mine.length, mode: system === 'socketio' ? 'sio' : 'ws', localAddresses: ['127.0.0.1'], concurrency: 64 },
        'connected',
        300_000,
      );
    }),
  );
  const failed = replies.reduce((s, r) => s + r.failed, 0);
  if (failed > 0) throw new Error(`${system}: ${failed} of ${groups.length} connections failed`);
  let members = 0;
  const all = await poll(async () => (members = (await server.request({ cmd: 'count' }, 'count')).members) >= groups.length, 60_000, 100);
  if (!all) throw new Error(`${system}: only ${members} of ${groups.length} joined`);
}

async function s6(system: SystemName, rooms: number, layout: Layout): Promise<S6Row> {
  const { members, processes, rates, stepMs, warmupMs, payloadBytes, stopLoss } = config.s6;
  const redis = await BenchRedis.start();
  const { admin } = redis;
  const env = { REDIS_URL: redis.url };
  const names = Array.from({ length: rooms }, (_, i) => `r${i}`);
  const servers: ServerChild[] = [];
  const loadgens = spawnLoadgens(rooms * members, 1);
  let publisher: Child<PublisherCommand, PublisherReply> | null = null;
  try {
    const subs: [number, number][] = [];
    let before = await subscriptions(admin);
    for (let p = 0; p < processes; p++) {
      const { server, port } = await startServer(system, p === 0 ? profileArgs(system, 's6') : [], env);
      servers.push(server);
      const mine: string[] = [];
      for (let i = 0; i < rooms; i++) for (let j = 0; j < members; j++) if (processOf(layout, i, j, processes) === p) mine.push(names[i]);
      await connectRooms(system, server, port, loadgens, mine);
      await sleep(300);
      const now = await subscriptions(admin);
      subs.push([now[0] - before[0], now[1] - before[1]]);
      before = now;
    }
    publisher = new Child<PublisherCommand, PublisherReply>(spawn('publisher.ts', [], env, [system]), 'publisher');
    await publisher.wait('ready');
    await sleep(1000); // the connections' aftermath (GC, timers set up) is not idle cost
    const idleFrom = [await serverCpuUs(servers), performance.now()];
    await sleep(IDLE_MS);
    const idleCpuUsPerSecond = ((await serverCpuUs(servers)) - idleFrom[0]) / ((performance.now() - idleFrom[1]) / 1000);
    // Warm-up at the first rate, not measured: the first step's CPU per send would carry the JIT's work.
    const warm = await publisher.request(
      { cmd: 'step', group: names[0], groups: names, settle: true, rate: rates[0], durationMs: warmupMs, seqStart: 0, payloadBytes },
      'stepped',
      warmupMs + 30_000,
    );
    let seq = warm.sent;
    await drain(loadgens, warm.sent * members, 1000, 8_000);
    const steps: S6Step[] = [];
    for (const rate of rates) {
      resetLoadgens(loadgens, seq);
      const cpuBefore = await processCpuUs(servers);
      const spanFrom = performance.now();
      const redisBefore = await redisCpuUs(admin);
      const stepped = await publisher.request(
        { cmd: 'step', group: names[0], groups: names, settle: true, rate, durationMs: stepMs, seqStart: seq, payloadBytes },
        'stepped',
        stepMs + 30_000,
      );
      seq += stepped.sent;
      const expected = stepped.sent * members;
      const m = merged(await drain(loadgens, expected, 1500, 8_000));
      const cpuAfter = await processCpuUs(servers);
      const perProcess = cpuAfter.map((after, i) => after - cpuBefore[i]);
      const spanUs = (performance.now() - spanFrom) * 1000;
      const redisAfter = await redisCpuUs(admin);
      steps.push({
        rate,
        sent: stepped.sent,
        sentPerSecond: stepped.sent / ((stepped.endUs - stepped.startUs) / 1e6),
        perSecond: m.received / ((Math.max(m.lastUs, stepped.endUs) - stepped.startUs) / 1e6),
        loss: expected === 0 ? 0 : 1 - m.received / expected,
        p99: percentile(m.hist, 0.99) / 1000,
        disorder: m.disorder,
        serverCpuUs: perProcess.reduce((a, b) => a + b, 0),
        processCpuUs: perProcess,
        redisCpuUs: redisAfter - redisBefore,
        received: m.received,
        spanUs,
      });
      const last = steps[steps.length - 1];
      if (last.loss > stopLoss || last.perSecond < 0.5 * last.sentPerSecond * members) break;
      await sleep(300);
    }
    return { system, rooms, layout, processes, steps, subscriptions: subs, idleCpuUsPerSecond };
  } finally {
    if (publisher) await publisher.stop();
    await Promise.all(loadgens.map((l) => l.stop()));
    for (const server of servers) await server.stop();
    await redis.close();
  }
}

/**
 * Held: the publisher got ≥ 90% of the offered rate into Redis (else the rate was never offered: the machine's
 * limit), nothing lost, nothing twice, and deliveries kept pace (≥ 90% of sent × members per second).
 */
const held = (step: S6Step): boolean =>
  step.sentPerSecond >= 0.9 * step.rate && step.loss === 0 && step.disorder === 0 && step.perSecond >= 0.9 * step.sentPerSecond * config.s6.members;

/** The highest offered rate held (with every lower step held too), or undefined. */
function best(row: S6Row): S6Step | undefined {
  let top: S6Step | undefined;
  for (const step of row.steps) {
    if (!held(step)) break;
    top = step;
  }
  return top;
}

/**
 * The highest rate every system of one room count and layout held; when some system held none, the highest rate
 * at which every system still lost nothing (pace not held: the machine's limit, not the system's), marked so.
 */
function commonRate(peers: S6Row[]): { rate: number; held: boolean } | undefined {
  const tops = peers.map(best);
  if (tops.every((t) => t !== undefined)) return { rate: Math.min(...tops.map((t) => t!.rate)), held: true };
  const rates = peers[0].steps.map((st) => st.rate).filter((rate) => peers.every((p) => p.steps.some((st) => st.rate === rate && st.loss === 0 && st.disorder === 0)));
  return rates.length > 0 ? { rate: Math.max(...rates), held: false } : undefined;
}

/** Server CPU per send with the servers' idle CPU over the same span taken out. */
const netCpu = (row: S6Row, step: S6Step): number => (step.serverCpuUs - (row.idleCpuUsPerSecond * step.spanUs) / 1e6) / step.sent;

const layoutLabel = (layout: Layout, processes: number): string =>
  layout === 'affinity' ? 'room affinity' : `spread (${Array.from({ length: Math.min(processes, config.s6.members) }, () => config.s6.members / Math.min(processes, config.s6.members)).join('+')})`;

function printS6(rows: S6Row[]): void {
  const c = config.s6;
  console.log(
    `\nS6 many small rooms: one private redis-server, ${c.processes} server processes, rooms of ${c.members} members ` +
      `(${c.rooms.map((r) => fmt(r)).join(' and ')} rooms), group sends spread round-robin over the rooms by an outside publisher ` +
      `at stepped offered rates for ${c.stepMs / 1000} s each (${c.payloadBytes}-byte payloads). Layouts: spread (a room's members ` +
      `go round the processes) and room affinity (every member of a room on one process, as a load balancer routing by room gives). ` +
      `Held: zero loss, nothing twice, deliveries ≥ 90% of sent × ${c.members} per second. Server CPU: process.cpuUsage() of all ` +
      `server processes over the step and its drain, per group send (also with the servers' idle CPU, read for ${IDLE_MS / 1000} s ` +
      `before the warm-up, taken out); Redis CPU: INFO CPU (user + sys) per delivery, same span.`,
  );
  const stepRows: string[][] = [];
  for (const r of rows) {
    for (const st of r.steps) {
      stepRows.push([
        LABEL[r.system],
        fmt(r.rooms),
        layoutLabel(r.layout, r.processes),
        fmt(st.rate),
        fmt(st.sentPerSecond),
        fmt(st.perSecond),
        `${(st.loss * 100).toFixed(2)}%`,
        fmt(st.p99, 2),
        fmt(st.serverCpuUs / st.sent, 1),
        fmt(st.redisCpuUs / Math.max(1, st.received), 2),
        held(st) ? 'yes' : 'no',
      ]);
    }
  }
  console.log(
    table(['system', 'rooms', 'layout', 'offered sends/s', 'sent/s', 'delivered msgs/s', 'loss', 'p99 ms', 'server CPU µs / send', 'Redis CPU µs / delivery', 'held'], stepRows),
  );
  console.log(
    '\nS6 summary (per room count and layout: the highest rate held; CPU figures at the highest rate both systems held; ' +
      'subscriptions per server process from CLIENT LIST, channels + patterns)',
  );
  const summary: string[][] = [];
  for (const r of rows) {
    const top = best(r);
    const peers = rows.filter((o) => o.rooms === r.rooms && o.layout === r.layout);
    const common = commonRate(peers);
    const at = common === undefined ? undefined : r.steps.find((st) => st.rate === common.rate);
    const ck = peers.find((o) => o.system === 'channelkit');
    const ckAt = common === undefined ? undefined : ck?.steps.find((st) => st.rate === common.rate);
    summary.push([
      LABEL[r.system],
      fmt(r.rooms),
      layoutLabel(r.layout, r.processes),
      top ? fmt(top.rate) : 'none',
      top ? fmt(top.p99, 2) : 'n/a',
      r.subscriptions.map(([sub, psub]) => `${sub} + ${psub}`).join('; '),
      at ? `${fmt(common!.rate)}${common!.held ? '' : ' (zero loss, pace not held)'}` : 'n/a',
      at ? fmt(at.serverCpuUs / at.sent, 1) : 'n/a',
      at ? fmt(netCpu(r, at), 1) : 'n/a',
      at ? at.processCpuUs.map((us) => fmt(us / at.sent, 1)).join('; ') : 'n/a',
      fmt(r.idleCpuUsPerSecond / 1000, 1),
      at ? fmt(at.redisCpuUs / Math.max(1, at.received), 2) : 'n/a',
      at && ckAt ? ratio(ckAt.serverCpuUs / ckAt.sent, at.serverCpuUs / at.sent) : 'n/a',
      at && ckAt && ck ? ratio(netCpu(ck, ckAt), netCpu(r, at)) : 'n/a',
    ]);
  }
  console.log(
    table(
      [
        'system',
        'rooms',
        'layout',
        'highest sends/s held',
        'p99 ms there',
        'subscriptions per process',
        'rate both held',
        'server CPU µs / send there',
        'same, idle CPU taken out',
        'each process µs / send there',
        'idle server CPU ms/s',
        'Redis CPU µs / delivery there',
        'channelkit / this (server CPU per send)',
        'channelkit / this (idle taken out)',
      ],
      summary,
    ),
  );
}

/** Both systems through Redis: channelkit's RedisPubSubChannelLayer and Socket.IO's redis-adapter (others have no such form here). */
export const s6Scenario: Scenario<S6Row[]> = {
  name: 's6',
  which: (systems) => systems.filter((x) => x === 'channelkit' || x === 'socketio'),
  run: async (system) => {
    const rows: S6Row[] = [];
    for (const rooms of config.s6.rooms) for (const layout of ['spread', 'affinity'] as const) rows.push(await s6(system, rooms, layout));
    return rows;
  },
  print: (runs) =>
    printS6(runs.flat().sort((a, b) => a.rooms - b.rooms || a.layout.localeCompare(b.layout) || a.system.localeCompare(b.system))),
  profiled: true,
};
