// S5 big broadcast: as many idle clients in one group as the machine allows; time until the last one has a message.
// One process stops at the fd hard limit; channelkit-workers (`serve --workers N`) spreads the sockets over N workers.
import { execSync } from 'node:child_process';
import { connectSome, drain, merged, resetLoadgens, type Scenario, sleep, sourceAddresses, spawnLoadgens, startServer } from '../harness';
import { LABEL, SOCKETS_PER_LOADGEN, type SystemName, config } from '../options';
import { percentile } from '../protocol';
import { fmt, median, ratio, table } from '../table';

interface S5Row {
  system: SystemName;
  /** Server processes' plan: workers (channelkit-workers) or 1. */
  workers: number;
  target: number;
  capped: boolean;
  connected: number;
  failed: number;
  connectMs: number;
  /** (RSS of every server process at N clients − the same at 0) / N, bytes: primary and workers summed. */
  rssPerConnection: number;
  /** (RSS at N − RSS at N/2) / (N − N/2), bytes: the same sum, without start-up memory given back in between. */
  rssMarginal: number;
  /** Per round: ms from the publish to the last client's receipt; and the median client's. */
  lastMs: number[];
  p50Ms: number[];
  received: number[];
}

/**
 * Sockets per load generator for channelkit-workers: 18,000 and a few fds of its own stay under the 20,000 fd hard
 * limit, so 100,000 clients take 6 generators rather than 12. The one-process rows keep SOCKETS_PER_LOADGEN (9,000,
 * at least two generators) as before, so their figures stay comparable with earlier runs.
 */
const S5_SOCKETS_PER_LOADGEN = 18_000;
/** Sockets per source address: well inside one address's ephemeral port range (32768-60999 here, 28,232 ports). */
const SOCKETS_PER_ADDRESS = 5_000;

/**
 * Idle time before each RSS reading. An idle server's RSS falls by ~30 MiB per process about 6 s after start-up
 * (V8 gives back heap pages; seen with ts-node), then holds: reading sooner made RSS per connection negative at 5,000.
 */
const SETTLE_MS = 8_000;

/** The hard fd limit of this process, which the servers (forked from it) inherit. */
function fdHardLimit(): number {
  try {
    return Number(execSync('ulimit -Hn', { shell: '/bin/sh', encoding: 'utf8' }).trim()) || Infinity;
  } catch {
    return Infinity;
  }
}

interface S5Plan {
  count: number;
  capped: boolean;
  limit: number;
  workers: number;
}

function s5Plan(system: SystemName): S5Plan {
  const limit = fdHardLimit();
  if (system === 'channelkit-workers') {
    // Round-robin spreads the sockets evenly; 80% of the limit per worker leaves room for an uneven hand-out.
    const perWorker = Number.isFinite(limit) ? Math.floor((limit - 500) * 0.8) : Infinity;
    const workers = config.s5.workers > 0 ? config.s5.workers : Math.max(2, Math.ceil(config.s5.target / perWorker));
    return { count: config.s5.target, capped: false, limit, workers };
  }
  // The server process needs one fd per socket plus its own (stdio, IPC, epoll, the listener): keep 500 spare.
  const cap = Number.isFinite(limit) ? limit - 500 : Infinity;
  const count = Math.min(config.s5.target, cap);
  return { count, capped: count < config.s5.target, limit, workers: 1 };
}

async function s5(system: SystemName): Promise<S5Row> {
  const plan = s5Plan(system);
  const { count } = plan;
  // N workers each compile the TypeScript on start: on 2 busy cores that can take minutes.
  const workers = system === 'channelkit-workers';
  const { server, port } = await startServer(system, [], workers ? { BENCH_WORKERS: String(plan.workers) } : {}, workers ? 300_000 : 60_000);
  const perLoadgen = system === 'channelkit-workers' ? S5_SOCKETS_PER_LOADGEN : SOCKETS_PER_LOADGEN;
  const loadgens = spawnLoadgens(count, Math.max(2, Math.ceil(count / perLoadgen)), perLoadgen);
  try {
    await sleep(SETTLE_MS);
    const empty = await server.request({ cmd: 'rss' }, 'rss');
    const addresses = sourceAddresses(Math.max(loadgens.length, Math.ceil(count / SOCKETS_PER_ADDRESS) + 1), 20);
    // 20 ms a socket at least: 50,000 handshakes through the primary's round-robin took over 300 s on 2 busy cores.
    const options = { localAddresses: addresses, tolerateFailures: true, timeoutMs: Math.max(300_000, count * 20) };
    const halfway = Math.floor(count / 2);
    const a = await connectSome(system, server, port, loadgens, halfway, halfway, ['bench'], options);
    await sleep(SETTLE_MS);
    const half = await server.request({ cmd: 'rss' }, 'rss', 120_000);
    const b = await connectSome(system, server, port, loadgens, count - halfway, a.members + count - halfway, ['bench'], options);
    const c = { members: b.members, failed: a.failed + b.failed, ms: a.ms + b.ms };
    await sleep(SETTLE_MS);
    const full = await server.request({ cmd: 'rss' }, 'rss', 120_000);
    const row: S5Row = {
      system,
      workers: plan.workers,
      target: count,
      capped: plan.capped,
      connected: c.members,
      failed: c.failed,
      connectMs: c.ms,
      rssPerConnection: c.members === 0 ? NaN : (full.rss - empty.rss) / c.members,
      rssMarginal: c.members === a.members ? NaN : (full.rss - half.rss) / (c.members - a.members),
      lastMs: [],
      p50Ms: [],
      received: [],
    };
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

const label = (r: S5Row): string => (r.system === 'channelkit-workers' ? `channelkit, ${r.workers} workers` : LABEL[r.system]);

function printS5(rows: S5Row[]): void {
  const limit = fdHardLimit();
  const capped = rows.find((r) => r.capped);
  console.log(
    `\nS5 big broadcast: aim ${fmt(config.s5.target)} idle clients in one group; ` +
      (capped
        ? `one server process is CAPPED at ${fmt(capped.target)}: the process fd hard limit here is ${fmt(limit)} (one fd per socket), so ${fmt(config.s5.target)} cannot be reached in one process on this machine` +
          `${rows.some((r) => r.system === 'channelkit-workers') ? '; `serve --workers N` spreads them over N workers (round-robin from the primary; groups through the primary)' : ''}. `
        : '') +
      `Load generators of at most ${fmt(SOCKETS_PER_LOADGEN)} sockets (${fmt(S5_SOCKETS_PER_LOADGEN)} for the workers row), at least two, at most ${fmt(SOCKETS_PER_ADDRESS)} per 127.0.0.x source address; ` +
      `${config.s5.rounds} round(s) of one 64-byte message to all: time from the publish until the last client has it. ` +
      `Clients connect in two halves. RSS per connection: (RSS of every server process, primary and workers, at N clients − the same at 0) / N; ` +
      `marginal: (RSS at N − RSS at N/2) / (N/2), which leaves out start-up memory the processes give back meanwhile (the "from empty" figure can come out low, even negative, at small N).`,
  );
  const ck = rows.find((r) => r.system === 'channelkit');
  console.log(
    table(
      ['system', 'clients connected', 'failed', 'connect time (s)', 'last client has it (ms), median', 'each round (ms)', 'median client (ms)', 'delivered', 'server RSS KiB / conn (from empty)', 'server RSS KiB / conn (marginal)', 'channelkit / this (last ms)'],
      rows.map((r) => [
        label(r),
        `${fmt(r.connected)}${r.capped ? ' (fd cap)' : ''}`,
        fmt(r.failed),
        fmt(r.connectMs / 1000, 1),
        fmt(median(r.lastMs), 1),
        r.lastMs.map((x) => fmt(x, 1)).join(' / '),
        fmt(median(r.p50Ms), 1),
        r.received.map((x) => fmt(x)).join(' / '),
        fmt(r.rssPerConnection / 1024, 2),
        fmt(r.rssMarginal / 1024, 2),
        ck ? ratio(median(ck.lastMs), median(r.lastMs)) : 'n/a',
      ]),
    ),
  );
}

export const s5Scenario: Scenario<S5Row> = { name: 's5', which: (systems) => systems, run: s5, print: printS5, profiled: false };
