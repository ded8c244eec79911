// C compression: S2's shape (one group, in-process publisher under credit) with chat JSON payloads and
// permessage-deflate negotiated, to price compression per delivery: server CPU, bytes on the wire, memory.
import type { LoadgenChild, ServerChild } from '../child';
import { connectClients, drain, merged, resetLoadgens, type Scenario, sleep, spawnLoadgens, startServer } from '../harness';
import { type SystemName, config } from '../options';
import { fmt, table } from '../table';

interface CVariant {
  label: string;
  system: SystemName;
  /** Offer permessage-deflate (the server decides whether it is on). */
  deflate: boolean;
  env: Record<string, string>;
}

interface CRow {
  label: string;
  payloadBytes: number;
  deliveries: number;
  loss: number;
  cpuUsPerDelivery: number;
  wireBytesPerDelivery: number;
  /** Share of the deliveries that arrived compressed (RSV1). */
  compressedShare: number;
  /**
   * Marginal memory: (RSS with all clients − RSS with half of them) / (clients / 2), each read after a warm-up
   * publish (so per-socket compression state exists) and two GCs.
   */
  kibPerConnection: number;
}

/** channelkit's threshold here: low enough that the ~200-byte payload is compressed too. */
const THRESHOLD = '128';

const VARIANTS: Record<string, CVariant[]> = {
  channelkit: [
    { label: 'channelkit, uncompressed', system: 'channelkit', deflate: true, env: {} },
    { label: 'channelkit, deflate once per group send', system: 'channelkit', deflate: true, env: { BENCH_DEFLATE: '1', BENCH_DEFLATE_THRESHOLD: THRESHOLD } },
  ],
  naive: [
    { label: 'raw ws, uncompressed', system: 'naive', deflate: true, env: {} },
    { label: 'raw ws, its perMessageDeflate (per socket)', system: 'naive', deflate: true, env: { BENCH_DEFLATE: '1' } },
  ],
};

async function publish(
  server: ServerChild,
  loadgens: LoadgenChild[],
  durationMs: number,
  seqStart: number,
  payloadBytes: number,
  clients: number,
): Promise<number> {
  const { window } = config.c;
  const epoch = resetLoadgens(loadgens, seqStart);
  const latest = loadgens.map(() => 0);
  loadgens.forEach((l, i) => {
    l.onProgress = (message) => {
      if (message.type !== 'progress' || message.epoch !== epoch) return;
      latest[i] = message.received;
      server.send({ cmd: 'credit', received: latest.reduce((a, b) => a + b, 0) });
    };
    l.send({ cmd: 'progress', intervalMs: 2 });
  });
  try {
    const done = await server.request(
      { cmd: 'publish', group: 'bench', durationMs, batch: 1, turnMs: 20, payloadBytes, maxBacklogBytes: 64 * 1024, seqStart, window, clients, chat: true },
      'published',
      durationMs + 60_000,
    );
    return done.messages;
  } finally {
    for (const l of loadgens) {
      l.send({ cmd: 'progress', intervalMs: 0 });
      l.onProgress = null;
    }
  }
}

async function one(variant: CVariant, payloadBytes: number): Promise<CRow> {
  const { clients, durationMs, warmupMs } = config.c;
  const { server, port } = await startServer(variant.system, ['--expose-gc'], variant.env);
  const loadgens = spawnLoadgens(clients, 1);
  try {
    const half = Math.floor(clients / 2);
    const deflate = { deflate: variant.deflate };
    await connectClients(variant.system, server, port, loadgens, half, half, ['bench'], deflate);
    await sleep(300);
    // A short publish with half the clients, so that their sockets hold whatever compression state they keep.
    const first = await publish(server, loadgens, warmupMs / 2, 0, payloadBytes, half);
    await drain(loadgens, first * half, 1000, 10_000);
    const halfRss = await server.request({ cmd: 'rss' }, 'rss');
    await connectClients(variant.system, server, port, loadgens, clients - half, clients, ['bench'], deflate);
    await sleep(300);
    const warm = first + (await publish(server, loadgens, warmupMs, first, payloadBytes, clients));
    await drain(loadgens, (warm - first) * clients, 1000, 10_000);
    const fullRss = await server.request({ cmd: 'rss' }, 'rss');
    const before = await server.request({ cmd: 'cpu' }, 'cpu');
    const messages = await publish(server, loadgens, durationMs, warm, payloadBytes, clients);
    const stats = await drain(loadgens, messages * clients);
    const after = await server.request({ cmd: 'cpu' }, 'cpu');
    const m = merged(stats);
    const wire = stats.reduce((s, r) => s + (r.bytes ?? 0), 0);
    const inflated = stats.reduce((s, r) => s + (r.inflated ?? 0), 0);
    return {
      label: variant.label,
      payloadBytes,
      deliveries: m.received,
      loss: messages === 0 ? 0 : 1 - m.received / (messages * clients),
      cpuUsPerDelivery: (after.user + after.system - before.user - before.system) / Math.max(1, m.received),
      wireBytesPerDelivery: wire / Math.max(1, m.received),
      compressedShare: inflated / Math.max(1, m.received),
      kibPerConnection: (fullRss.rss - halfRss.rss) / (clients - half) / 1024,
    };
  } finally {
    await Promise.all(loadgens.map((l) => l.stop()));
    await server.stop();
  }
}

/** Every variant of `system` at each payload size: one server process per run. */
async function c(system: SystemName): Promise<CRow[]> {
  const rows: CRow[] = [];
  for (const payloadBytes of config.c.payloads) {
    for (const variant of VARIANTS[system] ?? []) {
      process.stderr.write(`  ${variant.label}, ${payloadBytes} B\n`);
      rows.push(await one(variant, payloadBytes));
    }
  }
  return rows;
}

function printC(runs: CRow[][]): void {
  const rows = runs.flat();
  const cfg = config.c;
  console.log(
    `\nC compression: ${fmt(cfg.clients)} clients in one group offering permessage-deflate as Chrome does, in-process publisher for ` +
      `${cfg.durationMs / 1000} s after ${cfg.warmupMs / 1000} s (credit ${cfg.window} per client), chat JSON payloads; channelkit threshold ${THRESHOLD} B. ` +
      'CPU: the server process (user + system) over the measured run / deliveries; wire: bytes the load generators read / deliveries; ' +
      'memory: marginal RSS per connection, after GC, between half and all of the clients connected and published to',
  );
  const base = (payloadBytes: number): CRow | undefined => rows.find((r) => r.payloadBytes === payloadBytes && r.label === 'channelkit, uncompressed');
  console.log(
    table(
      ['system', 'payload B', 'deliveries', 'loss', 'CPU µs / delivery', 'wire B / delivery', 'compressed', 'KiB / connection', 'CPU / channelkit uncompressed'],
      rows.map((r) => {
        const b = base(r.payloadBytes);
        return [
          r.label,
          fmt(r.payloadBytes),
          fmt(r.deliveries),
          `${(r.loss * 100).toFixed(2)}%`,
          fmt(r.cpuUsPerDelivery, 3),
          fmt(r.wireBytesPerDelivery, 1),
          `${(r.compressedShare * 100).toFixed(0)}%`,
          fmt(r.kibPerConnection, 1),
          b ? `${(r.cpuUsPerDelivery / b.cpuUsPerDelivery).toFixed(2)}×` : 'n/a',
        ];
      }),
    ),
  );
}

export const cScenario: Scenario<CRow[]> = {
  name: 'c',
  which: (systems) => systems.filter((s) => s in VARIANTS),
  run: c,
  print: printC,
  profiled: false,
};
