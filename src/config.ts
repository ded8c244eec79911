// Every environment variable channelkit reads, in one list, and `serve`'s configuration as one typed
// object checked at startup: a bad value stops the process with the variable, its value and the form.
import { takeWorkersFlag } from './cluster/options';
import { type LayerChoice, layerChoiceFromEnv, layerKeysFromEnv } from './layers/from-env';
import type { MetricsOptions } from './metrics/endpoint';
import { metricsFromEnv } from './metrics/from-env';

/** One environment variable: the README's table and `channelkit --help` list these. */
export interface Setting {
  name: string;
  /** What is used when it is unset. */
  default: string;
  meaning: string;
  /** `framework`: read by `channelkit` itself; `demo`: by the demo app (routing.ts). */
  scope: 'framework' | 'demo';
}

export const SETTINGS: readonly Setting[] = [
  { name: 'HOST', default: '127.0.0.1', meaning: 'address `serve` listens on', scope: 'framework' },
  { name: 'PORT', default: '8000', meaning: 'port `serve` listens on: an integer 0-65535 (0 picks a free one)', scope: 'framework' },
  { name: 'LOG_LEVEL', default: 'info', meaning: 'pino level: fatal, error, warn, info, debug, trace or silent', scope: 'framework' },
  { name: 'WORKERS', default: '1', meaning: 'worker processes of `serve` on one port: a positive integer or `auto` (one per core); `--workers N` wins', scope: 'framework' },
  { name: 'REDIS_URL', default: 'unset: in-memory layer', meaning: '`redis://host:port` (`rediss://` for TLS, `user:password@` for ACL); comma-separated hosts shard like channels_redis', scope: 'framework' },
  { name: 'REDIS_CLUSTER_URL', default: 'unset', meaning: 'Redis Cluster seed nodes, comma-separated: sharded pub/sub', scope: 'framework' },
  { name: 'CHANNEL_LAYER', default: 'pubsub', meaning: 'with `REDIS_URL` or Sentinels: `pubsub` or `list` (channels_redis core), the same in every process', scope: 'framework' },
  { name: 'REDIS_SENTINELS', default: 'unset', meaning: 'instead of `REDIS_URL`: Sentinels as `host:port,...`', scope: 'framework' },
  { name: 'REDIS_SENTINEL_MASTER', default: 'unset', meaning: 'with `REDIS_SENTINELS`: the master name they monitor', scope: 'framework' },
  { name: 'REDIS_USERNAME', default: 'unset', meaning: 'with `REDIS_SENTINELS`: the master\'s ACL user', scope: 'framework' },
  { name: 'REDIS_PASSWORD', default: 'unset', meaning: 'with `REDIS_SENTINELS`: the master\'s password (never logged)', scope: 'framework' },
  { name: 'REDIS_SENTINEL_PASSWORD', default: 'unset', meaning: 'with `REDIS_SENTINELS`: the Sentinels\' own password (never logged)', scope: 'framework' },
  { name: 'REDIS_TLS_CA', default: "Node's bundled CAs", meaning: 'path of a PEM file with the CA(s) that `rediss://` servers are checked against', scope: 'framework' },
  { name: 'CHANNEL_LAYER_KEYS', default: 'unset: msgpack in the clear', meaning: '`key1,key2`: encrypt layer messages as channels_redis\'s `symmetric_encryption_keys` (first encrypts, all decrypt)', scope: 'framework' },
  { name: 'METRICS', default: 'on', meaning: '`on` or `off`: `GET /metrics` on `PORT`', scope: 'framework' },
  { name: 'METRICS_PORT', default: 'unset', meaning: 'serve `/metrics` on this port instead of `PORT` (0 picks a free one); not with `METRICS=off`', scope: 'framework' },
  { name: 'PERMESSAGE_DEFLATE', default: 'off', meaning: '`on` or `off`: compress frames for clients that offer permessage-deflate, once per group send (threshold 1 KiB)', scope: 'framework' },
  { name: 'SECRET', default: 'random per process', meaning: 'signs the demo\'s tokens; set the same on every process', scope: 'demo' },
  { name: 'ALLOWED_ORIGINS', default: 'localhost,127.0.0.1,[::1]', meaning: 'browser origins allowed to connect, comma-separated', scope: 'demo' },
  { name: 'DEMO_PASSWORD', default: 'unset: any name logs in in development, login refused (503) elsewhere', meaning: 'the notifications demo\'s shared login password', scope: 'demo' },
  { name: 'PUSH_SECRET', default: 'unset: push refused (503)', meaning: '`X-Push-Secret` value that `POST /notifications/push` requires', scope: 'demo' },
  { name: 'NODE_ENV', default: 'unset', meaning: '`production` turns the demo\'s development login off', scope: 'demo' },
];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** What `channelkit serve` runs with, read from the environment (and `--workers`) once, at startup. */
export interface ServeConfig {
  /** HOST; undefined means the server's default (127.0.0.1). */
  host: string | undefined;
  /** PORT; undefined means the server's default (8000). */
  port: number | undefined;
  logLevel: string;
  workers: number;
  layer: LayerChoice;
  /** CHANNEL_LAYER_KEYS; undefined when unset. */
  layerKeys: string[] | undefined;
  metrics: boolean | MetricsOptions;
  /** PERMESSAGE_DEFLATE=on: the server's `perMessageDeflate: true`. */
  perMessageDeflate: boolean;
}

/**
 * `serve`'s configuration from `env` and its arguments (which lose `--workers N`). Every value is
 * checked here, so a bad one stops startup before anything listens, with a message that names the
 * variable, its value and the form expected.
 */
export function serveConfig(env: NodeJS.ProcessEnv, args: string[]): { config: ServeConfig; rest: string[] } {
  const { workers, rest } = takeWorkersFlag(args, env);
  const config: ServeConfig = {
    host: env.HOST || undefined,
    port: portFromEnv(env.PORT),
    logLevel: logLevelFromEnv(env.LOG_LEVEL),
    workers,
    layer: layerChoiceFromEnv(env),
    layerKeys: layerKeysFromEnv(env),
    metrics: metricsFromEnv(env),
    perMessageDeflate: onOffFromEnv('PERMESSAGE_DEFLATE', env.PERMESSAGE_DEFLATE, false),
  };
  return { config, rest };
}

/** PORT, checked: Number('abc') would reach listen() as NaN and fail with Node's wording. Empty means unset. */
export function portFromEnv(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port <= 65535)) throw new Error(`PORT: "${value}" is not a port; expected an integer from 0 to 65535 (0 picks a free port)`);
  return port;
}

/** An `on`/`off` variable, checked; empty is unset. */
export function onOffFromEnv(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  if (value !== 'on' && value !== 'off') throw new Error(`${name}: "${value}" is not a setting; expected on or off (default ${fallback ? 'on' : 'off'})`);
  return value === 'on';
}

/** LOG_LEVEL, checked: pino's own error ("default level:x must be included in custom levels") names neither. */
export function logLevelFromEnv(value: string | undefined): string {
  if (value === undefined || value === '') return 'info';
  if (!LOG_LEVELS.includes(value)) throw new Error(`LOG_LEVEL: "${value}" is not a log level; expected one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

/** The environment part of `channelkit --help`: one line per variable, from SETTINGS. */
export function settingsUsage(): string {
  const width = Math.max(...SETTINGS.map((setting) => setting.name.length));
  return SETTINGS.map((setting) => `  ${setting.name.padEnd(width)}  ${setting.meaning.replace(/`/g, '')} (default: ${setting.default})`).join('\n');
}
