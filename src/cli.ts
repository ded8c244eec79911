#!/usr/bin/env node
// The `channelkit` command: serve an app, run workers, publish to groups and channels from a shell.
import cluster from 'node:cluster';
import type { Application } from './application';
import { logLevelFromEnv, serveConfig, settingsUsage } from './config';
import { Primary } from './cluster/primary';
import { workerChannelLayer } from './cluster/worker';
import { channelLayerFromEnv, layerChoiceFromEnv, parseLayerKind, reportUnreachableAtStartup } from './layers/from-env';
import { createLogger } from './logger';
import { loadRoutingModule } from './module-loader';
import { workerMetrics } from './cluster/metrics';
import type { HttpHandler } from './server/options';
import { Server } from './server/server';
import type { ChannelNameRouter } from './consumer/worker';
import { Worker } from './consumer/worker';

const USAGE = `usage:
  channelkit serve [--layer L] [routing-module]       serve the module's \`application\` (and \`http\`) on HOST:PORT;
                                                      a .ts module runs through ts-node
  channelkit worker [--layer L] [--app module] <channel...>
                                                      run the module's \`workers\` ChannelNameRouter for these channels
                                                      (needs REDIS_URL or REDIS_CLUSTER_URL)
  channelkit publish [--layer L] (--group G | --channel C) '<json event>'
                                                      send one event through REDIS_URL / REDIS_CLUSTER_URL

channel layer, the same rule for all three commands (every process of a deployment must agree):
  REDIS_CLUSTER_URL set: Redis Cluster sharded pub/sub; else REDIS_URL set: Redis pub/sub, or the Redis
  list layer with CHANNEL_LAYER=list (or --layer list); neither: in-memory, this process only.
  On pub/sub every worker receives every job and a job nobody listens to is lost (publish says so);
  on the list layer one worker takes each job and jobs wait up to 60 s for one.

environment (every variable, also in the README's table):
${settingsUsage()}`;

async function serve(argv: string[]): Promise<void> {
  const { config, rest: args } = serveConfig(process.env, argv);
  if (cluster.isPrimary && config.workers > 1) {
    // Everything checked above stops here, once, rather than in N workers; the workers load the app.
    new Primary({ workers: config.workers, logger: createLogger(config.logLevel) }).start();
    return;
  }
  const { file, module } = loadRoutingModule(args[0]);
  if (typeof module.application !== 'function') {
    throw new Error(
      `the routing module ${file} exports no \`application\` (found ${typeof module.application}); add \`export const application = URLRouter([...])\``,
    );
  }
  if (module.http !== undefined && typeof module.http !== 'function') {
    throw new Error(`the routing module ${file} exports \`http\` that is not a function (HttpHandler)`);
  }
  const logger = createLogger(config.logLevel);
  // One client must never bring the process down: log what escaped instead of crashing.
  process.on('unhandledRejection', (error) => logger.error({ err: error }, 'unhandled rejection'));
  const channelLayer = cluster.isWorker ? await workerChannelLayer(process.env, logger) : await channelLayerFromEnv(process.env, logger);
  // Under --workers, /metrics in whichever worker is asked serves the sum over every worker.
  const { metrics } = config;
  const clusterMetrics = cluster.isWorker && metrics !== false ? workerMetrics(() => server.metricsJson()) : null;
  const server: Server = new Server({
    app: module.application as Application,
    http: module.http as HttpHandler | undefined,
    channelLayer,
    logger,
    host: config.host,
    port: config.port,
    perMessageDeflate: config.perMessageDeflate,
    metrics: clusterMetrics ? { ...(typeof metrics === 'object' ? metrics : {}), exposition: clusterMetrics.exposition } : metrics,
  });
  await server.listen();
  void reportUnreachableAtStartup(channelLayer, config.layer, logger);
  onSignal(async () => {
    await server.close();
    await channelLayer.close();
    clusterMetrics?.close();
  }, logger);
}

async function worker(args: string[]): Promise<void> {
  let app: string | undefined;
  const channels: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--app') app = args[++i];
    else channels.push(args[i]);
  }
  const choice = layerChoiceFromEnv(process.env);
  if (choice.kind === 'memory') {
    throw new Error(
      'channelkit worker needs Redis: set REDIS_URL (or REDIS_CLUSTER_URL) to the Redis your servers use; ' +
        'with the in-memory layer a worker can never receive a job from another process',
    );
  }
  const { file, module } = loadRoutingModule(app);
  const router = module.workers as ChannelNameRouter | undefined;
  if (!router) throw new Error(`the routing module ${file} exports no \`workers\` ChannelNameRouter`);
  const logger = createLogger(logLevelFromEnv(process.env.LOG_LEVEL));
  const channelLayer = await channelLayerFromEnv(process.env, logger);
  const running = new Worker({ channelLayer, logger }, { router, channels: channels.length > 0 ? channels : undefined });
  running.start();
  void reportUnreachableAtStartup(channelLayer, choice, logger);
  onSignal(async () => {
    await running.close();
    await channelLayer.close();
  }, logger);
}

async function publish(args: string[]): Promise<void> {
  const { publishFromCli } = await import('./publisher');
  await publishFromCli(args, process.env);
}

function onSignal(shutdown: () => Promise<void>, logger: ReturnType<typeof createLogger>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // The logger writes synchronously (logger.ts); flushing first also covers a logger given another destination.
    const exit = (code: number) => logger.flush(() => process.exit(code));
    shutdown().then(
      () => exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** `--layer L` on any command is CHANNEL_LAYER=L for this process: one rule, read in one place (from-env.ts). */
function takeLayerFlag(args: string[]): string[] {
  const at = args.indexOf('--layer');
  if (at === -1) return args;
  const value = args[at + 1];
  if (value === undefined || value.startsWith('--')) throw new Error('--layer needs a value: pubsub or list');
  process.env.CHANNEL_LAYER = parseLayerKind(value, '--layer');
  return [...args.slice(0, at), ...args.slice(at + 2)];
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const help = command === undefined || command === '--help' || command === 'help';
  if (help || !['serve', 'worker', 'publish'].includes(command)) {
    if (!help) process.stderr.write(`channelkit: unknown command "${command}"\n`);
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = help ? 0 : 2;
    return;
  }
  const args = takeLayerFlag(rest);
  if (command === 'serve') return serve(args);
  if (command === 'worker') return worker(args);
  return publish(args);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`channelkit: ${(error as Error).message}\n`);
  process.exit(1);
});
