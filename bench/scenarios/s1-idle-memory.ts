// S1 idle memory: server memory growth per idle connection, as the slope over four connection counts.
import { connectClients, type Scenario, sleep, spawnLoadgens, startServer } from '../harness';
import { LABEL, type SystemName, config } from '../options';
import { fmt, ratio, table } from '../table';

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

export const s1Scenario: Scenario<S1Row> = { name: 's1', which: (systems) => systems, run: s1, print: printS1, profiled: false };
