// S3 cross-process: two servers on one private redis-server, an outside publisher at stepped rates; the highest
// rate held with zero loss, and what it costs in Redis commands and subscriptions.
import { BenchRedis } from './bench-redis';
import { Child, type ServerChild, spawn } from '../child';
import { connectClients, drain, merged, profileArgs, resetLoadgens, type Scenario, sleep, spawnLoadgens, startServer } from '../harness';
import { LABEL, type SystemName, config } from '../options';
import { percentile } from '../protocol';
import type { PublisherCommand, PublisherReply } from '../publisher';
import { fmt, ratio, table } from '../table';
import { commandStats, subscriptions } from './redis-cost';

interface S3Step {
  rate: number;
  /** Deliveries per group send (the clients of both servers). */
  clients: number;
  sentPerSecond: number;
  perSecond: number;
  loss: number;
  p50: number;
  p99: number;
  /** Server CPU (user + system, summed over the server processes) from the step's start to its drain, per delivery, µs. */
  cpuUsPerDelivery: number;
}

export interface S3Row {
  system: SystemName;
  /** channelkit runs twice: plain, and with history kept for the group (every send recorded in a Redis Stream). */
  history: boolean;
  steps: S3Step[];
  /** Redis commands per group send (INFO commandstats delta over the steps / sends), and the commands seen. */
  commandsPerSend: number;
  commands: string;
  /** Subscriptions per server process: [channels, patterns] for each server. */
  subscriptions: [number, number][];
  /** Server processes, each with `clientsPerServer` clients in the group. */
  servers: number;
}

/** The shape of one S3 run; S3 itself is two servers, the cost-growth scenario (g) varies the count. */
export interface S3Shape {
  servers: number;
  clientsPerServer: number;
  rates: number[];
}

/** Server CPU time so far, µs (user + system), summed over the processes. */
export async function serverCpuUs(servers: ServerChild[]): Promise<number> {
  const all = await Promise.all(servers.map((s) => s.request({ cmd: 'cpu' }, 'cpu')));
  return all.reduce((sum, r) => sum + r.user + r.system, 0);
}

async function s3(system: SystemName, history = false): Promise<S3Row> {
  return runS3(system, { servers: 2, clientsPerServer: config.s3.clientsPerServer, rates: config.s3.rates }, history);
}

export async function runS3(system: SystemName, shape: S3Shape, history = false): Promise<S3Row> {
  const { stepMs, payloadBytes, stopLoss } = config.s3;
  const { clientsPerServer, rates } = shape;
  const redis = await BenchRedis.start();
  const { admin } = redis;
  const env: Record<string, string> = { REDIS_URL: redis.url, ...(history ? { BENCH_HISTORY: '1' } : {}) };
  const servers: ServerChild[] = [];
  const loadgens = spawnLoadgens(clientsPerServer * shape.servers, 1);
  let publisher: Child<PublisherCommand, PublisherReply> | null = null;
  try {
    const subs: [number, number][] = [];
    let before: [number, number] = await subscriptions(admin);
    for (let i = 0; i < shape.servers; i++) {
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
    const clients = clientsPerServer * shape.servers;
    const statsBefore = await commandStats(admin);
    let seq = 0;
    let sends = 0;
    const steps: S3Step[] = [];
    for (const rate of rates) {
      resetLoadgens(loadgens, seq);
      const cpuBefore = await serverCpuUs(servers);
      const stepped = await publisher.request({ cmd: 'step', group: 'bench', rate, durationMs: stepMs, seqStart: seq, payloadBytes }, 'stepped', stepMs + 30_000);
      seq += stepped.sent;
      sends += stepped.sent;
      const expected = stepped.sent * clients;
      const m = merged(await drain(loadgens, expected, 1500, 8_000));
      const cpuUs = (await serverCpuUs(servers)) - cpuBefore;
      steps.push({
        rate,
        clients,
        sentPerSecond: stepped.sent / ((stepped.endUs - stepped.startUs) / 1e6),
        perSecond: m.received / ((Math.max(m.lastUs, stepped.endUs) - stepped.startUs) / 1e6),
        loss: expected === 0 ? 0 : 1 - m.received / expected,
        p50: percentile(m.hist, 0.5) / 1000,
        p99: percentile(m.hist, 0.99) / 1000,
        cpuUsPerDelivery: m.received === 0 ? NaN : cpuUs / m.received,
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
    return { system, history, steps, commandsPerSend: commands / sends, commands: seen.join(', '), subscriptions: subs, servers: shape.servers };
  } finally {
    if (publisher) await publisher.stop();
    await Promise.all(loadgens.map((l) => l.stop()));
    for (const server of servers) await server.stop();
    await redis.close();
  }
}

/** A step is held when nothing was lost and deliveries kept pace with the sends (≥ 90%), not merely arrived late. */
export const held = (step: S3Step): boolean => step.loss === 0 && step.perSecond >= 0.9 * step.sentPerSecond * step.clients;

/** The highest offered rate held (and every lower step held too), or undefined. */
export function zeroLoss(row: S3Row): S3Step | undefined {
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
        label(r),
        fmt(st.rate),
        fmt(st.sentPerSecond),
        fmt(st.perSecond),
        `${((st.perSecond / (st.sentPerSecond * st.clients)) * 100).toFixed(0)}%`,
        `${(st.loss * 100).toFixed(2)}%`,
        fmt(st.p50, 2),
        fmt(st.p99, 2),
        fmt(st.cpuUsPerDelivery, 2),
        held(st) ? 'yes' : 'no',
      ]);
    }
  }
  console.log(table(['system', 'offered group sends/s', 'sent/s', 'delivered msgs/s', 'delivered / sent×clients', 'loss', 'p50 ms', 'p99 ms', 'server CPU µs / delivery', 'held'], stepRows));
  const ck = rows.find((r) => r.system === 'channelkit' && !r.history);
  const ckBest = ck ? zeroLoss(ck) : undefined;
  console.log('\nS3 summary and Redis cost (commands per group send: INFO commandstats delta over all steps / group sends; subscriptions per server process from CLIENT LIST)');
  console.log(
    table(
      [
        'system',
        'highest group sends/s held (zero loss)',
        'delivered msgs/s there',
        'p99 ms there',
        'server CPU µs / delivery there',
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
          label(r),
          best ? fmt(best.rate) : 'none',
          best ? fmt(best.perSecond) : 'n/a',
          best ? fmt(best.p99, 2) : 'n/a',
          best ? fmt(best.cpuUsPerDelivery, 2) : 'n/a',
          `${fmt(r.commandsPerSend, 2)} (${r.commands || 'none'})`,
          r.subscriptions.map(([sub, psub]) => `${sub} + ${psub}`).join('; '),
          ck && best && ckBest ? ratio(ckBest.perSecond, best.perSecond) : 'n/a',
          common,
        ];
      }),
    ),
  );
  printCeiling(ck, rows.find((r) => r.system === 'ceiling'), c.rates);
}

/**
 * channelkit against the ceiling probe (the same Redis, the same raw PUBLISH path into a process that only frames
 * and writes): the share of the ceiling's zero-loss rate, and CPU per delivery at the highest rate both held.
 */
function printCeiling(ck: S3Row | undefined, ceiling: S3Row | undefined, rates: number[]): void {
  if (!ck || !ceiling) return;
  const a = zeroLoss(ck);
  const b = zeroLoss(ceiling);
  if (!a || !b) {
    console.log(`\nchannelkit / ceiling: n/a (channelkit held ${a ? fmt(a.rate) : 'no'} step, the ceiling ${b ? fmt(b.rate) : 'no'} step)`);
    return;
  }
  const rate = Math.min(a.rate, b.rate);
  const x = ck.steps.find((st) => st.rate === rate)!;
  const y = ceiling.steps.find((st) => st.rate === rate)!;
  const top = Math.max(...rates);
  const both = Math.min(ck.steps[ck.steps.length - 1].rate, ceiling.steps[ceiling.steps.length - 1].rate);
  const p = ck.steps.find((st) => st.rate === both)!;
  const q = ceiling.steps.find((st) => st.rate === both)!;
  console.log(
    `\nchannelkit / ceiling: ${((a.perSecond / b.perSecond) * 100).toFixed(0)}% of the ceiling probe's zero-loss delivered msgs/s ` +
      `(${fmt(a.perSecond)} / ${fmt(b.perSecond)}; issue 12's target: at least 60%)` +
      (a.rate === top && b.rate === top ? `; both held the highest offered rate (${fmt(top)}/s), so the ladder set this, not the systems` : '') +
      `. At the highest offered rate both ran (${fmt(both)}/s) channelkit delivered ${((p.perSecond / q.perSecond) * 100).toFixed(0)}% of the ceiling's msgs/s ` +
      `(${fmt(p.perSecond)} / ${fmt(q.perSecond)}). Server CPU per delivery at ${fmt(rate)} group sends/s: channelkit ${fmt(x.cpuUsPerDelivery, 2)} µs, ceiling ${fmt(y.cpuUsPerDelivery, 2)} µs ` +
      `(ceiling / channelkit ${((y.cpuUsPerDelivery / x.cpuUsPerDelivery) * 100).toFixed(0)}%).`,
  );
}

const label = (row: S3Row): string => (row.history ? `${LABEL[row.system]} + history` : LABEL[row.system]);

/**
 * channelkit runs a second time with history kept for the group (its "channelkit / this" column is then history's
 * cost). The ceiling probe subscribes with a raw node-redis client and writes prebuilt frames (servers/ceiling.ts).
 */
export const s3Scenario: Scenario<S3Row[]> = {
  name: 's3',
  which: (systems) => systems.filter((x) => x !== 'channelkit-workers'),
  run: async (system) => (system === 'channelkit' ? [await s3(system), await s3(system, true)] : [await s3(system)]),
  print: (runs) => printS3(runs.flat()),
  profiled: true,
};
