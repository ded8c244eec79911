// channelkit with N workers behind one port (node:cluster), as `channelkit serve --workers N` runs it: for S2 and S4.
// Not in the default system list: `npm run bench -- --only=channelkit,channelkit-workers --scenarios=s2,s4`.
// BENCH_WORKERS (default 2) sets N. Without REDIS_URL the workers share groups through the primary (WorkersRelay).
import cluster, { type Worker } from 'node:cluster';
import { type LayerMessage, Server, URLRouter, WebsocketConsumer, createLogger, path } from '../../src';
import { isRelayMessage, type WorkerBatch } from '../../src/cluster/messages';
import { WorkersRelay } from '../../src/cluster/relay';
import { workerChannelLayer } from '../../src/cluster/worker';
import type { ServerCommand, ServerReply } from '../protocol';
import { type System, serve } from './common';

class BenchConsumer extends WebsocketConsumer<{ group: string }> {
  override async connect(): Promise<void> {
    await this.groupAdd(this.scope.params.group);
    this.accept();
  }

  benchMessage(event: LayerMessage): void {
    this.send(event.payload as string);
  }
}

/**
 * A worker: the same server as servers/channelkit.ts, on the workers layer (or Redis with REDIS_URL), speaking the
 * bench protocol to the primary. Only the first worker publishes (S2's in-process publisher), so its group sends
 * reach its own members in-process and the other workers' through the primary: what `--workers` costs.
 */
async function runWorker(): Promise<void> {
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const server = new Server({
    app: URLRouter([path('ws/bench/:group/', BenchConsumer)]),
    channelLayer: await workerChannelLayer(process.env, logger),
    port: 0,
    logger,
    maxConnections: 200_000,
  });
  const live = (server as unknown as { live: Set<{ ws: { bufferedAmount: number } }> }).live;
  const system: System = {
    listen: async () => (await server.listen()).port,
    members: () => server.connectionCount,
    publish(group, payloads) {
      for (const payload of payloads) {
        void server.channelLayer.groupSend(group, { type: 'bench.message', payload }).catch((error: unknown) => {
          console.error('groupSend failed', error);
        });
      }
    },
    // This worker's sockets only: the end-to-end credit (--window) bounds the other workers' queues.
    maxBacklog() {
      let max = 0;
      for (const entry of live) if (entry.ws.bufferedAmount > max) max = entry.ws.bufferedAmount;
      return max;
    },
  };
  await serve(system);
}

/** The primary: forks the workers, relays their layer, and answers the runner (sums counts; the publisher is worker 1). */
async function runPrimary(): Promise<void> {
  const count = Number(process.env.BENCH_WORKERS ?? 2);
  // The runner gone (before ready too): the workers go with the primary (their IPC pipe closes).
  process.on('disconnect', () => process.exit(0));
  cluster.setupPrimary({ exec: __filename, execArgv: process.execArgv, serialization: 'advanced' });
  const relay = new WorkersRelay();
  const toRunner = (message: ServerReply) => process.send!(message);
  const workers: Worker[] = [];
  const replies = new Map<number, Array<(message: ServerReply) => void>>();
  const ready: Array<Promise<number>> = [];
  for (let i = 0; i < count; i++) {
    const worker = cluster.fork();
    workers.push(worker);
    replies.set(worker.id, []);
    relay.attach(worker.id, { send: (message) => worker.isConnected() && worker.send(message) });
    ready.push(
      new Promise((resolve) => {
        worker.on('message', (message: unknown) => {
          if (isRelayMessage(message)) return relay.handle(worker.id, message as WorkerBatch);
          const reply = message as ServerReply;
          if (reply.type === 'ready') return resolve(reply.port);
          const waiting = replies.get(worker.id)!.shift();
          if (waiting) waiting(reply);
          else toRunner(reply); // 'published', 'broadcasted': the publisher's, unasked
        });
      }),
    );
  }
  const ask = (worker: Worker, command: ServerCommand) =>
    new Promise<ServerReply>((resolve) => {
      replies.get(worker.id)!.push(resolve);
      worker.send(command);
    });
  const port = (await Promise.all(ready))[0];
  process.on('message', (command: ServerCommand) => {
    switch (command.cmd) {
      case 'count':
        void Promise.all(workers.map((w) => ask(w, command))).then((all) =>
          toRunner({ type: 'count', members: all.reduce((sum, r) => sum + (r.type === 'count' ? r.members : 0), 0) }),
        );
        break;
      case 'rss':
        void Promise.all(workers.map((w) => ask(w, command))).then((all) => {
          const own = process.memoryUsage();
          let rss = own.rss;
          let heapUsed = own.heapUsed;
          for (const r of all) if (r.type === 'rss') (rss += r.rss), (heapUsed += r.heapUsed);
          toRunner({ type: 'rss', rss, heapUsed });
        });
        break;
      case 'cpu':
        void Promise.all(workers.map((w) => ask(w, command))).then((all) => {
          const own = process.cpuUsage();
          let { user, system } = own;
          for (const r of all) if (r.type === 'cpu') (user += r.user), (system += r.system);
          toRunner({ type: 'cpu', user, system });
        });
        break;
      case 'exit':
        for (const w of workers) w.send(command);
        void Promise.all(workers.map((w) => new Promise((resolve) => w.once('exit', resolve)))).then(() => process.exit(0));
        break;
      default:
        // publish, credit, broadcast: the publisher is the first worker.
        workers[0].send(command);
    }
  });
  toRunner({ type: 'ready', port });
}

void (cluster.isPrimary ? runPrimary() : runWorker());
