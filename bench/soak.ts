// `npm run soak -- [--minutes=10] [--redis-url=redis://127.0.0.1:PORT] [--clients=50] [--rooms=50] [--publish-rate=50]`
//
// Soak on the Redis pub/sub layer. A child process serves the demo app (../routing) like
// `channelkit serve` with REDIS_URL, and answers stats requests over IPC. This process churns chat
// clients (connect = join a random room of --rooms, send 1-3 messages and wait for each to come back,
// disconnect = leave) with --clients loops in parallel, while an outside publisher (createPublisher)
// group-sends to random rooms at --publish-rate per second. It prints server RSS, heap (after a GC),
// active handles, Redis subscriptions (PUBSUB NUMSUB of the rooms' groups, NUMPAT, CHANNELS) and open
// sockets at start (before any client), every --sample-seconds, in the middle and at the end (after
// every client has gone), then PASS/FAIL lines; exit code 1 on any FAIL.
// Without --redis-url a private redis-server is started on a free port (never the shared 6379).
import { type ChildProcess, fork } from 'node:child_process';
import { createClient } from 'redis';
import WebSocket from 'ws';
import { poll } from '../test/support/wait';

// ---------------------------------------------------------------------------------------------
// Child: the server under soak

interface ChildStats {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  handles: Record<string, number>;
  sockets: number;
  layerGroups: number;
  layerNamed: number;
}

type ToChild = { type: 'stats'; id: number } | { type: 'shutdown' };
type FromChild = { type: 'ready'; port: number } | { type: 'stats'; id: number; stats: ChildStats } | { type: 'log'; level: number; msg: string };

async function runChild(): Promise<void> {
  const { application, http } = await import('../routing');
  const { Server, channelLayerFromEnv, createLogger } = await import('../src');
  const send = (message: FromChild) => process.send!(message);
  // Logs go to stdout as JSON lines (the parent counts warnings and errors), at warn by default.
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  process.on('unhandledRejection', (error) => logger.error({ err: error }, 'unhandled rejection'));
  const channelLayer = await channelLayerFromEnv(process.env, logger);
  const server = new Server({ app: application, http, channelLayer, logger, port: 0, heartbeatInterval: 30_000 });
  const { port } = await server.listen();
  // The start sample must see the layer settled: the first newChannel() waits (bounded by the layer)
  // for the process's PSUBSCRIBE, which otherwise lands a moment after 'listening'.
  await channelLayer.newChannel();
  const subscriptions = () =>
    (channelLayer as { subscriptionCounts?: () => { groups: number; named: number } }).subscriptionCounts?.() ?? { groups: -1, named: -1 };
  process.on('message', (message: ToChild) => {
    if (message.type === 'stats') {
      // A full GC first, so heap figures compare across samples instead of following the collector.
      (globalThis as { gc?: () => void }).gc?.();
      const memory = process.memoryUsage();
      const handles: Record<string, number> = {};
      for (const kind of process.getActiveResourcesInfo()) handles[kind] = (handles[kind] ?? 0) + 1;
      const { groups, named } = subscriptions();
      send({
        type: 'stats',
        id: message.id,
        stats: {
          rss: memory.rss,
          heapUsed: memory.heapUsed,
          heapTotal: memory.heapTotal,
          external: memory.external,
          handles,
          sockets: server.connectionCount,
          layerGroups: groups,
          layerNamed: named,
        },
      });
    } else if (message.type === 'shutdown') {
      void server
        .close()
        .then(() => channelLayer.close())
        .then(() => process.exit(0));
    }
  });
  send({ type: 'ready', port });
}

// ---------------------------------------------------------------------------------------------
// Parent: churn, publish, sample, judge

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const hit = argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (hit === undefined) return undefined;
  return hit.includes('=') ? hit.slice(hit.indexOf('=') + 1) : '';
};
const number = (name: string, fallback: number): number => {
  const value = flag(name);
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`--${name} must be a non-negative number, got ${value}`);
  return parsed;
};

const MINUTES = number('minutes', 10);
const CLIENT_LOOPS = number('clients', 50);
const ROOMS = number('rooms', 50);
const PUBLISH_RATE = number('publish-rate', 50);
const SAMPLE_SECONDS = number('sample-seconds', 60);
/** Longest any single wait (connect, echo, close, stats) may take before it counts as a failure. */
const STEP_TIMEOUT_MS = 5000;

const MiB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const roomGroup = (room: number) => `chat_room-${room}`;

interface Counters {
  connects: number;
  connectFailures: number;
  sent: number;
  echoed: number;
  lostEchoes: number;
  received: number;
  published: number;
  publishFailures: number;
  closes: Record<string, number>;
  closeTimeouts: number;
  errors: Record<string, number>;
}

const counters: Counters = {
  connects: 0,
  connectFailures: 0,
  sent: 0,
  echoed: 0,
  lostEchoes: 0,
  received: 0,
  published: 0,
  publishFailures: 0,
  closes: {},
  closeTimeouts: 0,
  errors: {},
};

const countError = (what: string) => (counters.errors[what] = (counters.errors[what] ?? 0) + 1);

class ChildServer {
  readonly child: ChildProcess;
  readonly ready: Promise<number>;
  readonly logLevels: Record<number, number> = {};
  readonly badLines: string[] = [];
  private nextId = 0;
  private readonly pending = new Map<number, (stats: ChildStats) => void>();

  constructor(redisUrl: string) {
    this.child = fork(__filename, ['--child'], {
      execArgv: ['--expose-gc', '-r', 'ts-node/register/transpile-only'],
      env: { ...process.env, REDIS_URL: redisUrl, CHANNELKIT_SOAK_CHILD: '1', TS_NODE_TRANSPILE_ONLY: 'true' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    let rest = '';
    const onOutput = (chunk: Buffer) => {
      rest += chunk.toString();
      const lines = rest.split('\n');
      rest = lines.pop()!;
      for (const line of lines.filter(Boolean)) {
        try {
          const parsed = JSON.parse(line) as { level: number; msg: string };
          this.logLevels[parsed.level] = (this.logLevels[parsed.level] ?? 0) + 1;
          if (parsed.level >= 40 && this.badLines.length < 20) this.badLines.push(line);
        } catch {
          if (this.badLines.length < 20) this.badLines.push(line);
        }
      }
    };
    this.child.stdout!.on('data', onOutput);
    this.child.stderr!.on('data', onOutput);
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (message: FromChild) => {
        if (message.type === 'ready') resolve(message.port);
        else if (message.type === 'stats') {
          this.pending.get(message.id)?.(message.stats);
          this.pending.delete(message.id);
        }
      });
      this.child.once('exit', (code) => reject(new Error(`soak server exited with ${code}: ${this.badLines.join('\n')}`)));
    });
    this.ready.catch(() => undefined);
  }

  stats(): Promise<ChildStats> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('the soak server did not answer a stats request within 5 s'));
      }, STEP_TIMEOUT_MS);
      this.pending.set(id, (stats) => {
        clearTimeout(timer);
        resolve(stats);
      });
      this.child.send({ type: 'stats', id } satisfies ToChild);
    });
  }

  /** Asks for a clean shutdown; SIGKILL after 15 s. Resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.send({ type: 'shutdown' } satisfies ToChild);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}

/** Opens a client, or rejects after STEP_TIMEOUT_MS. */
function connect(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('connect timeout'));
    }, STEP_TIMEOUT_MS);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      ws.terminate();
      reject(new Error(`HTTP ${res.statusCode}`));
    });
    ws.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** One churning client after another, until `deadline`: connect, join, send, hear itself, leave. */
async function churnLoop(loop: number, port: number, deadline: number): Promise<void> {
  let session = 0;
  while (Date.now() < deadline) {
    session++;
    const room = Math.floor(Math.random() * ROOMS);
    let ws: WebSocket;
    try {
      ws = await connect(`ws://127.0.0.1:${port}/ws/chat/room-${room}/`);
      counters.connects++;
    } catch (error) {
      counters.connectFailures++;
      countError(`connect: ${(error as Error).message}`);
      await sleep(200);
      continue;
    }
    const waiting = new Map<string, () => void>();
    ws.on('message', (data: Buffer) => {
      counters.received++;
      const message = (JSON.parse(data.toString()) as { message?: string }).message;
      if (message !== undefined) waiting.get(message)?.();
    });
    ws.on('error', (error) => countError(`socket: ${error.message}`));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    for (let i = 1 + Math.floor(Math.random() * 3); i > 0; i--) {
      const message = `loop ${loop} session ${session} message ${i}`;
      const heard = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), STEP_TIMEOUT_MS);
        waiting.set(message, () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      ws.send(JSON.stringify({ message }));
      counters.sent++;
      if (await heard) counters.echoed++;
      else counters.lostEchoes++;
      waiting.delete(message);
      await sleep(Math.random() * 300);
    }
    ws.close(1000, 'bye');
    const code = await Promise.race([closed, sleep(STEP_TIMEOUT_MS).then(() => null)]);
    if (code === null) {
      counters.closeTimeouts++;
      ws.terminate();
    } else counters.closes[code] = (counters.closes[code] ?? 0) + 1;
    await sleep(Math.random() * 100);
  }
}

interface RedisView {
  numsub: number;
  numpat: number;
  channels: number;
}

function formatSample(label: string, elapsedMs: number, stats: ChildStats, redis: RedisView): string {
  const handles = Object.values(stats.handles).reduce((a, b) => a + b, 0);
  return (
    `[${label.padEnd(6)}] t=${String(Math.round(elapsedMs / 1000)).padStart(4)}s  rss ${MiB(stats.rss).padStart(10)}  heap ${MiB(stats.heapUsed).padStart(9)}` +
    `  handles ${String(handles).padStart(4)} ${JSON.stringify(stats.handles)}  sockets ${stats.sockets}` +
    `  layer groups ${stats.layerGroups}  redis NUMSUB(rooms) ${redis.numsub} NUMPAT ${redis.numpat} CHANNELS ${redis.channels}` +
    `  | connects ${counters.connects} sent ${counters.sent} echoed ${counters.echoed} published ${counters.published}`
  );
}

async function runParent(): Promise<void> {
  const { RedisServer } = await import('../test/support/redis');
  const { createPublisher } = await import('../src/publisher');
  let ownRedis: Awaited<ReturnType<typeof RedisServer.start>> | null = null;
  let redisUrl = flag('redis-url');
  if (!redisUrl) {
    ownRedis = await RedisServer.start();
    redisUrl = ownRedis.url;
  }
  if (/:6379(\/|$)/.test(redisUrl)) throw new Error('refusing the shared Redis on port 6379: pass another --redis-url, or none');
  const durationMs = MINUTES * 60_000;
  console.log(
    `soak: ${MINUTES} min on ${redisUrl}${ownRedis ? ' (private redis-server)' : ''}; ${CLIENT_LOOPS} client loops over ${ROOMS} rooms; ` +
      `outside publisher at ${PUBLISH_RATE}/s; samples every ${SAMPLE_SECONDS}s`,
  );

  const server = new ChildServer(redisUrl);
  const admin = createClient({ url: redisUrl });
  admin.on('error', () => undefined);
  const publisher = await createPublisher({ url: redisUrl });
  let failed = false;
  const verdict = (ok: boolean, what: string) => {
    if (!ok) failed = true;
    console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);
  };
  try {
    const port = await server.ready;
    await admin.connect();
    const rooms = Array.from({ length: ROOMS }, (_, i) => `asgi__group__${roomGroup(i)}`);
    const redisView = async (): Promise<RedisView> => {
      const numsub = (await admin.sendCommand(['PUBSUB', 'NUMSUB', ...rooms])) as (string | number)[];
      let total = 0;
      for (let i = 1; i < numsub.length; i += 2) total += Number(numsub[i]);
      const numpat = Number(await admin.sendCommand(['PUBSUB', 'NUMPAT']));
      const channels = ((await admin.sendCommand(['PUBSUB', 'CHANNELS'])) as string[]).length;
      return { numsub: total, numpat, channels };
    };
    const started = Date.now();
    const sample = async (label: string) => {
      const [stats, redis] = await Promise.all([server.stats(), redisView()]);
      console.log(formatSample(label, Date.now() - started, stats, redis));
      return { stats, redis };
    };

    const start = await sample('start');
    const deadline = started + durationMs;

    // The outside publisher: group sends to random rooms, paced in 100 ms ticks.
    let publishing = true;
    const publishLoop = (async () => {
      let n = 0;
      while (publishing && Date.now() < deadline) {
        const tick = Date.now();
        const count = Math.round(PUBLISH_RATE / 10);
        await Promise.all(
          Array.from({ length: count }, async () => {
            try {
              await publisher.groupSend(roomGroup(Math.floor(Math.random() * ROOMS)), { type: 'chat.message', message: `from outside ${n++}` });
              counters.published++;
            } catch (error) {
              counters.publishFailures++;
              countError(`publish: ${(error as Error).message}`);
            }
          }),
        );
        await sleep(Math.max(0, 100 - (Date.now() - tick)));
      }
    })();

    const loops = Promise.all(Array.from({ length: CLIENT_LOOPS }, (_, i) => churnLoop(i, port, deadline)));

    // Samples: every SAMPLE_SECONDS, plus one in the middle.
    let middle: Awaited<ReturnType<typeof sample>> | null = null;
    const samples: Awaited<ReturnType<typeof sample>>[] = [start];
    let nextSample = started + SAMPLE_SECONDS * 1000;
    const middleAt = started + durationMs / 2;
    while (Date.now() < deadline) {
      const now = Date.now();
      if (!middle && now >= middleAt) {
        middle = await sample('middle');
        samples.push(middle);
        // No periodic sample right on top of the middle one.
        if (nextSample - Date.now() < (SAMPLE_SECONDS * 1000) / 2) nextSample += SAMPLE_SECONDS * 1000;
      } else if (now >= nextSample) {
        nextSample += SAMPLE_SECONDS * 1000;
        if (nextSample > deadline) nextSample = Infinity;
        samples.push(await sample('sample'));
      }
      await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
    }
    publishing = false;
    await Promise.all([loops, publishLoop]);

    // Every client has closed; give the server and Redis a bounded moment to settle.
    await poll(
      async () => {
        const [stats, redis] = await Promise.all([server.stats(), redisView()]);
        return stats.sockets === 0 && redis.numsub === 0 && stats.layerGroups === 0;
      },
      10_000,
      200,
    );
    const end = await sample('end');

    const handles = (stats: ChildStats) => Object.values(stats.handles).reduce((a, b) => a + b, 0);
    console.log(
      `totals: ${counters.connects} connections (${counters.connectFailures} failed), ${counters.sent} chat messages sent, ${counters.echoed} heard back, ` +
        `${counters.lostEchoes} not heard within ${STEP_TIMEOUT_MS / 1000}s, ${counters.received} frames received, ${counters.published} published from outside ` +
        `(${counters.publishFailures} failed); client close codes ${JSON.stringify(counters.closes)}, ${counters.closeTimeouts} close timeouts; ` +
        `errors ${JSON.stringify(counters.errors)}; server log lines by level ${JSON.stringify(server.logLevels)}`,
    );
    for (const line of server.badLines) console.log(`server said: ${line}`);
    const heapGrowth = end.stats.heapUsed - (middle ?? start).stats.heapUsed;
    console.log(
      `memory: rss start ${MiB(start.stats.rss)} middle ${MiB((middle ?? start).stats.rss)} end ${MiB(end.stats.rss)}; ` +
        `heap start ${MiB(start.stats.heapUsed)} middle ${MiB((middle ?? start).stats.heapUsed)} end ${MiB(end.stats.heapUsed)} ` +
        `(end - middle ${heapGrowth >= 0 ? '+' : ''}${MiB(heapGrowth)}); heap by sample ${samples.map((s) => MiB(s.stats.heapUsed)).join(', ')}, ${MiB(end.stats.heapUsed)}`,
    );

    verdict(end.stats.sockets === 0, `open sockets back to zero (server.connectionCount ${end.stats.sockets})`);
    verdict(end.redis.numsub === 0, `Redis group subscriptions back to zero (PUBSUB NUMSUB over ${ROOMS} rooms: ${end.redis.numsub})`);
    verdict(end.stats.layerGroups === 0, `layer's own group subscriptions back to zero (${end.stats.layerGroups})`);
    verdict(
      end.redis.numpat === start.redis.numpat && end.redis.channels === start.redis.channels,
      `Redis NUMPAT and CHANNELS back to their start (${start.redis.numpat}/${start.redis.channels}: the process pattern; now ${end.redis.numpat}/${end.redis.channels})`,
    );
    verdict(handles(end.stats) <= handles(start.stats), `server handles back to the start (${handles(start.stats)} -> ${handles(end.stats)})`);
    verdict(counters.connects > 0 && counters.connectFailures === 0, `every connect succeeded (${counters.connects}, ${counters.connectFailures} failed)`);
    verdict(counters.lostEchoes === 0, `every chat message came back to its sender (${counters.lostEchoes} missing)`);
    verdict(counters.published > 0 && counters.publishFailures === 0, `every outside group send went out (${counters.published}, ${counters.publishFailures} failed)`);
    verdict(counters.closeTimeouts === 0 && Object.keys(counters.closes).every((code) => code === '1000'), `every client close answered with 1000`);
    verdict(Object.keys(server.logLevels).every((level) => Number(level) < 50), `no server log line at error level`);
    // Heap after a GC at the end against the middle: a leak of per-connection state grows with the
    // connections made in the second half. 16 MiB is far above noise and far below 10 minutes of leaks.
    verdict(heapGrowth < 16 * 2 ** 20, `heap after GC not growing from middle to end (${heapGrowth >= 0 ? '+' : ''}${MiB(heapGrowth)}, bound 16 MiB)`);
  } finally {
    const code = await server.stop();
    if (code !== 0) verdict(false, `soak server exited with ${code}`);
    await publisher.close().catch(() => undefined);
    if (admin.isOpen) await admin.close().catch(() => undefined);
    await ownRedis?.close();
  }
  console.log(failed ? 'soak: FAIL' : 'soak: PASS');
  process.exitCode = failed ? 1 : 0;
}

if (process.env.CHANNELKIT_SOAK_CHILD === '1') {
  runChild().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  runParent().catch((error: unknown) => {
    console.error(`soak: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  });
}
