// S2 local fan-out: one group on one server, an in-process publisher under end-to-end credit; throughput and latency.
import type { ServerChild, LoadgenChild } from '../child';
import { connectSome, drain, merged, profileArgs, resetLoadgens, type Scenario, sleep, spawnLoadgens, startServer } from '../harness';
import { LABEL, type SystemName, config } from '../options';
import { type ServerReply, percentile } from '../protocol';
import { fmt, ratio, table } from '../table';

export interface S2Row {
  system: SystemName;
  clients: number;
  /** Server CPU (user + system) over the measured publish and its drain, per delivery, µs. */
  cpuUsPerDelivery: number;
  /** The same CPU per member per publishing turn: about per socket write, since a turn's messages go to a socket together. */
  cpuUsPerWrite: number;
  published: number;
  perSecond: number;
  p50: number;
  p99: number;
  loss: number;
  pausedShare: number;
  meanBatch: number;
  disorder: number;
}

/** One S2 publish run with end-to-end credit: load generators report progress, the runner relays it to the server. */
async function publishWithCredit(
  server: ServerChild,
  loadgens: LoadgenChild[],
  durationMs: number,
  seqStart: number,
  clients: number,
): Promise<Extract<ServerReply, { type: 'published' }>> {
  const { batch, turnMs, payloadBytes, maxBacklogBytes, window } = config.s2;
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
  return runS2(system, { clients: config.s2.clients, loadgens: config.s2.loadgens });
}

/** The shape of one S2 run: S2 itself is --s2-clients on --loadgens; the cost-growth scenario (g) varies the clients. */
export interface S2Shape {
  clients: number;
  /** Load generator processes at least (more when the clients exceed one generator's share). */
  loadgens: number;
  /** Source addresses (ephemeral ports are per source address). Default 127.0.0.1 alone. */
  localAddresses?: string[];
}

export async function runS2(system: SystemName, shape: S2Shape): Promise<S2Row> {
  const { durationMs, warmupMs } = config.s2;
  const { clients } = shape;
  const { server, port } = await startServer(system, profileArgs(system, 's2'));
  const loadgens = spawnLoadgens(clients, shape.loadgens);
  try {
    await connectSome(system, server, port, loadgens, clients, clients, ['bench'], { localAddresses: shape.localAddresses });
    await sleep(300);
    // Warm-up: the same publishing, not measured (JIT, buffers, TCP windows).
    let seq = 0;
    if (warmupMs > 0) {
      const warm = await publishWithCredit(server, loadgens, warmupMs, 0, clients);
      await drain(loadgens, warm.messages * clients, 1000, 10_000);
      seq = warm.messages;
    }
    const cpuBefore = await server.request({ cmd: 'cpu' }, 'cpu');
    const published = await publishWithCredit(server, loadgens, durationMs, seq, clients);
    const expected = published.messages * clients;
    const m = merged(await drain(loadgens, expected));
    const cpuAfter = await server.request({ cmd: 'cpu' }, 'cpu');
    const cpuUs = cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system;
    return {
      system,
      clients,
      cpuUsPerDelivery: m.received === 0 ? NaN : cpuUs / m.received,
      cpuUsPerWrite: published.meanBatch === 0 ? NaN : cpuUs / ((published.messages / published.meanBatch) * clients),
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
      ['system', 'delivered msgs/s', 'p50 ms', 'p99 ms', 'loss', 'published', 'mean batch', 'paused turns', 'server CPU µs / delivery', 'channelkit / this (msgs/s)', 'channelkit / this (p99)'],
      rows.map((r) => [
        LABEL[r.system],
        fmt(r.perSecond),
        fmt(r.p50, 2),
        fmt(r.p99, 2),
        `${(r.loss * 100).toFixed(2)}%`,
        fmt(r.published),
        fmt(r.meanBatch, 1),
        `${(r.pausedShare * 100).toFixed(0)}%`,
        fmt(r.cpuUsPerDelivery, 2),
        ck ? ratio(ck.perSecond, r.perSecond) : 'n/a',
        ck ? ratio(ck.p99, r.p99) : 'n/a',
      ]),
    ),
  );
  const disorder = rows.filter((r) => r.disorder > 0);
  for (const r of disorder) console.log(`  warning: ${LABEL[r.system]} delivered ${r.disorder} messages out of order or twice`);
}

export const s2Scenario: Scenario<S2Row> = { name: 's2', which: (systems) => systems, run: s2, print: printS2, profiled: true };
