// The bench's command line: which systems and scenarios run, and each scenario's sizes (`--quick` shrinks them).
const argv = process.argv.slice(2);
export const flag = (name: string): string | undefined => {
  const hit = argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (hit === undefined) return undefined;
  return hit.includes('=') ? hit.slice(hit.indexOf('=') + 1) : '';
};
export const quick = flag('quick') !== undefined;
export const profile = flag('profile') !== undefined;

export const SYSTEMS = ['channelkit', 'naive', 'socketio', 'ceiling'] as const;
/** Systems that run only when `--only` names them: channelkit-workers is `serve --workers` (BENCH_WORKERS, default 2), for S2 and S4. */
export const EXTRA_SYSTEMS = ['channelkit-workers'] as const;
export type SystemName = (typeof SYSTEMS)[number] | (typeof EXTRA_SYSTEMS)[number];
export const LABEL: Record<SystemName, string> = {
  channelkit: 'channelkit',
  'channelkit-workers': `channelkit, ${process.env.BENCH_WORKERS ?? 2} workers`,
  naive: 'naive raw ws',
  socketio: 'Socket.IO 4',
  ceiling: 'ceiling probe',
};
export const systems = (flag('only')?.split(',') ?? [...SYSTEMS]) as SystemName[];
export const scenarios = flag('scenarios')?.split(',') ?? ['s1', 's2', 's3', 's4', 's5', 'h', 'g', 'c', 's6', 's7'];
const list = (name: string, fallback: number[]): number[] => flag(name)?.split(',').map(Number) ?? fallback;

export const config = {
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
  /** Cost growth: S2 at each group size, S3 at each count of server processes (clients and rates as S3's). */
  g: {
    sizes: list('g-sizes', [100, 1_000, 10_000]),
    processes: list('g-processes', [1, 2, 4]),
  },
  c: {
    clients: Number(flag('c-clients') ?? 1_000),
    durationMs: Number(flag('c-seconds') ?? (quick ? 2 : 5)) * 1000,
    warmupMs: quick ? 500 : 1000,
    /** Chat JSON of ~200 B (one message) and ~4 KiB (a history batch). */
    payloads: list('c-payloads', [200, 4096]),
    window: Number(flag('window') ?? 64),
  },
  s6: {
    /** Room counts, one run each (rooms of `members` members). */
    rooms: list('s6-rooms', quick ? [2_000] : [2_000, 5_000]),
    members: 4,
    /** Server processes over the one Redis: 2, or more to see how the per-send cost grows with them. */
    processes: Number(flag('s6-processes') ?? 2),
    rates: list('s6-rates', quick ? [500, 2_000, 5_000, 10_000, 20_000] : [1_000, 2_000, 5_000, 10_000, 15_000, 20_000, 30_000, 40_000]),
    stepMs: Number(flag('s6-seconds') ?? (quick ? 1.5 : 3)) * 1000,
    /** Sends at the first rate before the measured steps (JIT, buffers). */
    warmupMs: quick ? 1000 : 2000,
    payloadBytes: 64,
    stopLoss: 0.01,
  },
  s7: {
    clientsPerServer: Number(flag('s7-clients') ?? (quick ? 200 : 500)),
    /** Rooms the clients join and leave (more rooms than clients: most joins find a room empty in that process). */
    rooms: Number(flag('s7-rooms') ?? (quick ? 1_000 : 2_000)),
    /** How long a client stays in a room once its join was acknowledged. */
    dwellMs: Number(flag('s7-dwell-ms') ?? 50),
    durationMs: Number(flag('s7-seconds') ?? (quick ? 2 : 5)) * 1000,
    /** Group sends per second spread round-robin over the rooms while the clients churn. */
    rate: Number(flag('s7-rate') ?? (quick ? 2_000 : 5_000)),
    payloadBytes: 64,
  },
  s5: {
    target: Number(flag('s5-connections') ?? (quick ? 5_000 : 100_000)),
    rounds: quick ? 1 : 3,
    /** channelkit-workers' worker processes in S5; 0 = enough that each stays well under the fd hard limit (at least 2). */
    workers: Number(flag('s5-workers') ?? 0),
  },
};
/** Sockets per load generator: under the 20,000 fd hard limit with room to spare. */
export const SOCKETS_PER_LOADGEN = 9_000;
