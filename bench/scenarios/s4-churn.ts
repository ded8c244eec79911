// S4 connection churn: connect, handshake, route, join, close, as fast as 32 loops go; and joins left behind.
import { poll } from '../../test/support/wait';
import { pathFor, profileArgs, type Scenario, sourceAddresses, spawnLoadgens, startServer } from '../harness';
import { LABEL, type SystemName, config } from '../options';
import { fmt, ratio, table } from '../table';

interface S4Row {
  system: SystemName;
  perSecond: number;
  failed: number;
  /** Members the server still counted 5 s after the churn stopped (leaked joins). */
  leftover: number;
  /** Server CPU (user + system) over the churn per completed cycle, µs. */
  cpuUsPerCycle: number;
}

async function s4(system: SystemName): Promise<S4Row> {
  const { durationMs, concurrency } = config.s4;
  const { server, port } = await startServer(system, profileArgs(system, 's4'));
  const loadgens = spawnLoadgens(1, 1);
  try {
    const cpuBefore = await server.request({ cmd: 'cpu' }, 'cpu');
    const reply = await loadgens[0].request(
      { cmd: 'churn', port, paths: [pathFor(system, 'bench')], mode: system === 'socketio' ? 'sio' : 'ws', localAddresses: sourceAddresses(8, 2), concurrency, durationMs },
      'churned',
      durationMs + 60_000,
    );
    const cpuAfter = await server.request({ cmd: 'cpu' }, 'cpu');
    const cpuUs = cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system;
    let leftover = 0;
    await poll(async () => (leftover = (await server.request({ cmd: 'count' }, 'count')).members) === 0, 5000, 100);
    return { system, perSecond: reply.cycles / (reply.ms / 1000), failed: reply.failed, leftover, cpuUsPerCycle: reply.cycles === 0 ? NaN : cpuUs / reply.cycles };
  } finally {
    await Promise.all(loadgens.map((l) => l.stop()));
    await server.stop();
  }
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
      ['system', 'connects+disconnects /s', 'failed', 'members left 5 s later', 'server CPU µs per cycle', 'channelkit / this', 'CPU per cycle, channelkit / this'],
      rows.map((r) => [
        LABEL[r.system],
        fmt(r.perSecond),
        fmt(r.failed),
        fmt(r.leftover),
        fmt(r.cpuUsPerCycle, 1),
        ck ? ratio(ck.perSecond, r.perSecond) : 'n/a',
        ck ? ratio(ck.cpuUsPerCycle, r.cpuUsPerCycle) : 'n/a',
      ]),
    ),
  );
}

export const s4Scenario: Scenario<S4Row> = { name: 's4', which: (systems) => systems, run: s4, print: printS4, profiled: true };
