// G cost growth: does the cost of one delivery stay flat as the work grows? S2 at 100, 1,000 and 10,000 members
// of one group, and S3 over 1, 2 and 4 server processes; server CPU per delivery at each size.
import { type Scenario, sourceAddresses } from '../harness';
import { LABEL, SOCKETS_PER_LOADGEN, type SystemName, config } from '../options';
import { fmt, table } from '../table';
import { type S2Row, runS2 } from './s2-fanout';
import { type S3Row, held, runS3, zeroLoss } from './s3-redis';

interface GRow {
  system: SystemName;
  /** One S2 run per group size (config.g.sizes). */
  local: S2Row[];
  /** One S3 run per count of server processes (config.g.processes). */
  cross: S3Row[];
}

/** Above this many clients the sockets bind to several 127.0.0.x source addresses (ephemeral ports are per address). */
const ONE_ADDRESS = 5_000;

async function g(system: SystemName): Promise<GRow> {
  const local: S2Row[] = [];
  for (const clients of config.g.sizes) {
    const loadgens = Math.max(config.s2.loadgens, Math.ceil(clients / SOCKETS_PER_LOADGEN));
    const localAddresses = clients > ONE_ADDRESS ? sourceAddresses(Math.ceil(clients / ONE_ADDRESS) + 1, 40) : undefined;
    local.push(await runS2(system, { clients, loadgens, localAddresses }));
  }
  const cross: S3Row[] = [];
  for (const servers of config.g.processes) {
    cross.push(await runS3(system, { servers, clientsPerServer: config.s3.clientsPerServer, rates: config.s3.rates }));
  }
  return { system, local, cross };
}

/** The highest offered rate that every run of `rows` held (each with every lower step held too). */
function commonRate(rows: S3Row[]): number | undefined {
  const best = rows.map((r) => zeroLoss(r)?.rate ?? 0);
  const rate = Math.min(...best);
  return rate > 0 ? rate : undefined;
}

const growth = (last: number, first: number): string => (Number.isFinite(last / first) ? `${(last / first).toFixed(2)}×` : 'n/a');

function printG(rows: GRow[]): void {
  const c = config;
  console.log(
    `\nG cost growth, local (S2's shape at each group size: in-process publisher for ${c.s2.durationMs / 1000} s after a ${c.s2.warmupMs / 1000} s warm-up, ` +
      `credit ${c.s2.window} messages per client; load generators of at most ${fmt(SOCKETS_PER_LOADGEN)} sockets, several source addresses above ${fmt(ONE_ADDRESS)} clients). ` +
      `Server CPU: process.cpuUsage() delta (user + system) of the server process over the measured publish and its drain, per delivery. ` +
      `Flat CPU per delivery means the cost of a group send grows linearly with its members and no faster. ` +
      `The publisher batches as many messages per turn as fit in ~${c.s2.turnMs} ms, so a big group gets small batches and each socket write carries fewer ` +
      `messages: CPU per member per publishing turn (about one socket write) is the figure that separates per-member cost from batching.`,
  );
  console.log(
    table(
      ['system', 'members', 'delivered msgs/s', 'server CPU µs / delivery', 'CPU / delivery vs the smallest', 'mean batch', 'server CPU µs / member / publishing turn', 'p50 ms', 'p99 ms', 'loss'],
      rows.flatMap((r) =>
        r.local.map((x) => [
          LABEL[r.system],
          fmt(x.clients),
          fmt(x.perSecond),
          fmt(x.cpuUsPerDelivery, 3),
          growth(x.cpuUsPerDelivery, r.local[0].cpuUsPerDelivery),
          fmt(x.meanBatch, 1),
          fmt(x.cpuUsPerWrite, 2),
          fmt(x.p50, 2),
          fmt(x.p99, 2),
          `${(x.loss * 100).toFixed(2)}%`,
        ]),
      ),
    ),
  );
  console.log(
    `\nG cost growth, cross-process (S3's shape with 1 to ${Math.max(...c.g.processes)} server processes, ${fmt(c.s3.clientsPerServer)} clients each in one group, ` +
      `one private redis-server, an outside publisher at ${c.s3.rates.map((x) => fmt(x)).join(', ')} group sends/s for ${c.s3.stepMs / 1000} s each). ` +
      `Server CPU summed over the processes, per delivery; "at the common rate": the highest offered rate every process count of that system held, ` +
      `so batching (which grows with the rate) does not tilt the comparison.`,
  );
  const crossRows: string[][] = [];
  for (const r of rows) {
    const common = commonRate(r.cross);
    for (const x of r.cross) {
      const best = zeroLoss(x);
      const at = common === undefined ? undefined : x.steps.find((st) => st.rate === common);
      crossRows.push([
        LABEL[r.system],
        fmt(x.servers),
        fmt(x.servers * c.s3.clientsPerServer),
        best ? fmt(best.rate) : 'none',
        best ? fmt(best.perSecond) : 'n/a',
        best ? fmt(best.cpuUsPerDelivery, 3) : 'n/a',
        at && held(at) ? `${fmt(at.cpuUsPerDelivery, 3)} at ${fmt(common!)}/s` : 'n/a',
        fmt(x.commandsPerSend, 2),
      ]);
    }
  }
  console.log(
    table(
      ['system', 'server processes', 'clients', 'highest group sends/s held', 'delivered msgs/s there', 'server CPU µs / delivery there', 'server CPU µs / delivery at the common rate', 'Redis commands / group send'],
      crossRows,
    ),
  );
  console.log('\nG summary: server CPU µs per delivery as the work grows (flat is the goal; the last column is largest / smallest)');
  const summary: string[][] = [];
  for (const r of rows) {
    const l = r.local.map((x) => x.cpuUsPerDelivery);
    const w = r.local.map((x) => x.cpuUsPerWrite);
    summary.push([
      LABEL[r.system],
      `members ${c.g.sizes.map((x) => fmt(x)).join(' → ')}`,
      l.map((x) => fmt(x, 3)).join(' → '),
      growth(l[l.length - 1], l[0]),
      w.map((x) => fmt(x, 2)).join(' → '),
      growth(w[w.length - 1], w[0]),
    ]);
    const common = commonRate(r.cross);
    const x = r.cross.map((row) => row.steps.find((st) => st.rate === common)?.cpuUsPerDelivery ?? NaN);
    summary.push([
      LABEL[r.system],
      `processes ${c.g.processes.join(' → ')}${common === undefined ? '' : ` at ${fmt(common)} sends/s`}`,
      x.map((v) => fmt(v, 3)).join(' → '),
      growth(x[x.length - 1], x[0]),
      '',
      '',
    ]);
  }
  console.log(table(['system', 'work', 'server CPU µs / delivery', 'growth', 'server CPU µs / member / publishing turn', 'growth'], summary));
}

export const gScenario: Scenario<GRow> = {
  name: 'g',
  which: (systems) => systems.filter((x) => x !== 'channelkit-workers' && x !== 'naive'),
  run: g,
  print: printG,
  profiled: false,
};
