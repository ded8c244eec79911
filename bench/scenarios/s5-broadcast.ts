// S5 big broadcast: as many idle clients in one group as the fd limit allows; time until the last one has a message.
import { execSync } from 'node:child_process';
import { connectSome, drain, merged, resetLoadgens, type Scenario, sleep, sourceAddresses, spawnLoadgens, startServer } from '../harness';
import { LABEL, SOCKETS_PER_LOADGEN, type SystemName, config } from '../options';
import { percentile } from '../protocol';
import { fmt, median, ratio, table } from '../table';

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

export const s5Scenario: Scenario<S5Row> = { name: 's5', which: (systems) => systems, run: s5, print: printS5, profiled: false };
