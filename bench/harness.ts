// What every scenario does: start a system's server, spread clients over load generators, wait for them to join,
// and collect the load generators' counts once deliveries stop.
import { join } from 'node:path';
import { Child, type LoadgenChild, type ServerChild, spawn } from './child';
import { type SystemName, SOCKETS_PER_LOADGEN, profile } from './options';
import { HIST_SIZE, type LoadgenCommand, type LoadgenReply, addPacked } from './protocol';
import { poll } from '../test/support/wait';

/** One scenario: runs once per system (`which` picks them from the --only list), then prints its table. */
export interface Scenario<Row> {
  name: string;
  which(systems: SystemName[]): SystemName[];
  run(system: SystemName): Promise<Row>;
  print(rows: Row[]): void;
  /** With --profile, the channelkit server's CPU profile of this scenario is summarised after its table. */
  profiled: boolean;
}

export async function startServer(
  system: SystemName,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
  readyMs = 60_000,
): Promise<{ server: ServerChild; port: number }> {
  const server: ServerChild = new Child(spawn(`servers/${system}.ts`, extraArgs, env), system);
  const ready = await server.wait('ready', readyMs).catch((error: unknown) => {
    server.proc.kill('SIGKILL'); // not left behind: a server that never got ready never listens to 'exit'
    throw error;
  });
  return { server, port: ready.port };
}

export function pathFor(system: SystemName, group: string): string {
  switch (system) {
    case 'channelkit':
    case 'channelkit-workers':
      return `/ws/bench/${group}/`;
    case 'socketio':
      return `/socket.io/?EIO=4&transport=websocket&room=${group}`;
    default:
      return `/${group}/`;
  }
}

export function spawnLoadgens(count: number, minimum: number, perLoadgen = SOCKETS_PER_LOADGEN): LoadgenChild[] {
  const n = Math.max(minimum, Math.ceil(count / perLoadgen));
  return Array.from({ length: n }, (_, i) => new Child<LoadgenCommand, LoadgenReply>(spawn('loadgen.ts'), `loadgen${i}`));
}

/** connectSome(), for callers that need only the connect time. */
export async function connectClients(...args: Parameters<typeof connectSome>): Promise<number> {
  return (await connectSome(...args)).ms;
}

/** Connects `count` more clients spread over the load generators; resolves once the server counts `members` joined. */
export async function connectSome(
  system: SystemName,
  server: ServerChild,
  port: number,
  children: LoadgenChild[],
  count: number,
  members: number,
  groups: string[],
  {
    localAddresses = ['127.0.0.1'],
    tolerateFailures = false,
    timeoutMs = 300_000,
    deflate = false,
  }: {
    localAddresses?: string[];
    tolerateFailures?: boolean;
    /** for the load generators' connects */
    timeoutMs?: number;
    /** offer permessage-deflate (scenario C) */
    deflate?: boolean;
  } = {},
): Promise<{ ms: number; ok: number; failed: number; members: number }> {
  const n = children.length;
  const paths = groups.map((g) => pathFor(system, g));
  const replies = await Promise.all(
    children.map((child, i) => {
      const share = Math.floor(count / n) + (i < count % n ? 1 : 0);
      // Each generator its own slice of the source addresses (ephemeral ports are per source address).
      const mine = localAddresses.filter((_, j) => localAddresses.length < n || j % n === i);
      return child.request(
        { cmd: 'connect', port, paths, count: share, mode: system === 'socketio' ? 'sio' : 'ws', localAddresses: mine, concurrency: 64, deflate },
        'connected',
        timeoutMs,
      );
    }),
  );
  const failed = replies.reduce((s, r) => s + r.failed, 0);
  if (failed > 0 && !tolerateFailures) throw new Error(`${system}: ${failed} of ${count} connections failed`);
  const want = members - failed;
  let joined = 0;
  const allJoined = await poll(async () => (joined = (await server.request({ cmd: 'count' }, 'count')).members) >= want, 60_000, 100);
  if (!allJoined && !tolerateFailures) throw new Error(`${system}: only ${joined} of ${members} joined`);
  return { ms: Math.max(...replies.map((r) => r.ms)), ok: count - failed, failed, members: joined };
}

/** Settling time before a measurement (GC, TCP windows, a server gone idle): the elapsed time is the point. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** With --profile, channelkit's server (S2, S4; the first of S3's two) writes a V8 CPU profile to bench/profiles/<scenario>/. */
export function profileArgs(system: SystemName, scenario: string): string[] {
  return profile && system === 'channelkit' ? ['--cpu-prof', `--cpu-prof-dir=${join(__dirname, 'profiles', scenario)}`] : [];
}

let epochs = 0;

/** Zeroes the load generators' counters; messages numbered below `minSeq` count as stale from now on. */
export function resetLoadgens(loadgens: LoadgenChild[], minSeq: number): number {
  const epoch = ++epochs;
  for (const l of loadgens) l.send({ cmd: 'reset', minSeq, epoch });
  return epoch;
}

export type Stats = Extract<LoadgenReply, { type: 'stats' }>;

/** Polls the load generators until `expected` deliveries arrived, nothing moved for `stillMs`, or `maxMs` passed. */
export async function drain(loadgens: LoadgenChild[], expected: number, stillMs = 2000, maxMs = 120_000): Promise<Stats[]> {
  let stats: Stats[] = [];
  let last = -1;
  let still = Date.now();
  await poll(
    async () => {
      stats = await Promise.all(loadgens.map((l) => l.request({ cmd: 'stats' }, 'stats')));
      const got = stats.reduce((s, r) => s + r.received, 0);
      if (got >= expected) return true;
      if (got !== last) {
        last = got;
        still = Date.now();
        return false;
      }
      return Date.now() - still > stillMs;
    },
    maxMs,
    50,
  );
  return stats;
}

export function merged(stats: Stats[]): { received: number; lastUs: number; hist: Float64Array; disorder: number } {
  const hist = new Float64Array(HIST_SIZE);
  for (const r of stats) addPacked(hist, r.hist);
  return {
    received: stats.reduce((s, r) => s + r.received, 0),
    lastUs: Math.max(...stats.map((r) => r.lastUs)),
    hist,
    disorder: stats.reduce((s, r) => s + r.malformed, 0),
  };
}

/**
 * Source addresses: 127.0.0.1 (no explicit bind, see loadgen.ts) and n − 1 more from 127.0.0.<first> on (the
 * whole 127/8 is loopback on Linux). S4 and S5 use different ones, so TIME_WAIT left by one does not crowd the next.
 */
export const sourceAddresses = (n: number, first: number): string[] => ['127.0.0.1', ...Array.from({ length: n - 1 }, (_, i) => `127.0.0.${first + i}`)];
