// The links of every Redis layer: one client factory (retry rule, offline queue), one health monitor, URLs fit for logs, skip counts.
import { createClient, createCluster } from 'redis';
import type { LayerHealth, LayerLogger } from '../layer';
import type { LinkStates } from '../stats';

/** For promises whose failure is reported elsewhere (as a link 'error', or to the caller already). */
export const noop = (): void => {};

const SILENT: LayerLogger = { info() {}, warn() {}, error() {} };

/**
 * node-redis `reconnectStrategy`: exponential from 50 ms, capped at 2 s, forever (losing Redis must
 * never end the process), with jitter so that many processes do not reconnect in step.
 */
export function reconnectDelay(retries: number): number {
  return Math.min(50 * 2 ** Math.min(retries, 6), 2000) + Math.floor(Math.random() * 100);
}

/** A URL fit for logs and health: no user name or password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '<invalid redis url>';
  }
}

/**
 * Where a link connects: a Redis URL (`redis://`, `rediss://` for TLS, `user:password@` for ACL), or a
 * local socket that leads to a Sentinel-managed master (sentinel.ts), with the master's credentials.
 */
export type RedisTarget = string | { path: string; name: string; username?: string; password?: string };

/** A target fit for logs and health: never its password. */
export function targetName(target: RedisTarget): string {
  return typeof target === 'string' ? redactUrl(target) : target.name;
}

/** How a Redis connection behaves; the same for a single client and for every node of a cluster. */
export interface LinkOptions {
  /**
   * Queue commands while the link is down. Default false: commands fail at once (the layer turns
   * that into LayerUnavailable) instead of piling up unseen. A subscriber keeps its queue: it only
   * ever holds (UN)SUBSCRIBE commands, one per group at most.
   */
  offlineQueue?: boolean;
  /** Milliseconds one connection attempt may take. Default 2000. */
  connectTimeout?: number;
  /**
   * Certificate authorities (PEM) that `rediss://` servers are checked against, instead of Node's
   * bundled ones: for a private CA. Default: Node's. Ignored for `redis://`.
   */
  ca?: string | Buffer;
}

function connectionDefaults({ offlineQueue = false, connectTimeout = 2000, ca }: LinkOptions) {
  return { disableOfflineQueue: !offlineQueue, socket: { connectTimeout, reconnectStrategy: reconnectDelay, ...(ca ? { ca } : {}) } };
}

/** The one place a node-redis client is made: it reconnects with `reconnectDelay`, forever. Not connected yet. */
export function createRedisClient(target: RedisTarget, options: LinkOptions = {}) {
  if (typeof target === 'string') {
    const defaults = connectionDefaults(options);
    // node-redis refuses a socket with `ca` but without `tls` for a rediss:// URL: say tls where the URL does.
    const tls = target.startsWith('rediss:');
    return createClient({ url: target, ...defaults, socket: { ...defaults.socket, tls } as typeof defaults.socket });
  }
  const { disableOfflineQueue, socket } = connectionDefaults({ ...options, ca: undefined });
  return createClient({ disableOfflineQueue, username: target.username, password: target.password, socket: { ...socket, path: target.path } });
}
export type RedisClient = ReturnType<typeof createRedisClient>;

/** The same for Redis Cluster: every node's connection gets the options. Not connected yet. */
export function createRedisCluster(seeds: string[], options: LinkOptions = {}) {
  const defaults = connectionDefaults(options);
  const tls = seeds.some((url) => url.startsWith('rediss:'));
  return createCluster({ rootNodes: seeds.map((url) => ({ url })), defaults: { ...defaults, socket: { ...defaults.socket, tls } as typeof defaults.socket } });
}
export type RedisClusterClient = ReturnType<typeof createRedisCluster>;

/**
 * A client from `createRedisClient`, connecting now, its health reported to `monitor` as `link`.
 * The 'error' listener is mandatory: node-redis emits 'error' on every lost connection and failed
 * reconnect, and an EventEmitter without one throws, which would crash the process.
 */
export function openLink(target: RedisTarget, options: LinkOptions, monitor: LinkMonitor, link: string): RedisClient {
  const client = createRedisClient(target, options);
  monitor.add(link);
  client.on('error', (error: Error) => {
    if (!client.isReady) monitor.failed(link, error.message);
  });
  client.on('ready', () => monitor.up(link));
  client.connect().catch(noop); // a close() during connecting rejects it; nothing to report then
  return client;
}

/** Graceful when connected (in-flight commands finish), immediate otherwise. */
export async function closeClient(client: RedisClient): Promise<void> {
  if (client.isReady) await client.close().catch(() => client.destroy());
  else if (client.isOpen) client.destroy();
}

/**
 * Tracks every Redis connection ("link") of a layer and reduces them to one health state. Logs once
 * per change of that state, not once per failed reconnect attempt.
 */
export class LinkMonitor implements LinkStates {
  /** link -> what is wrong with it ('connecting' until its first 'ready'). */
  private readonly down = new Map<string, string>();
  /** Every link seen -> its 'ready' events after the first (reconnects); -1 until its first. For /metrics. */
  private readonly readies = new Map<string, number>();
  private logged: 'connecting' | 'up' | 'down' = 'connecting';
  private everUp = false;
  private downWaiters: Array<() => void> = [];
  private readonly logger: LayerLogger;

  constructor(
    readonly backend: string,
    logger: LayerLogger | undefined,
  ) {
    this.logger = logger ?? SILENT;
  }

  /** A new link starts down ("connecting") until its first 'ready'. */
  add(link: string): void {
    this.down.set(link, 'connecting');
    if (!this.readies.has(link)) this.readies.set(link, -1);
  }

  up(link: string): void {
    this.readies.set(link, (this.readies.get(link) ?? -1) + 1);
    if (!this.down.delete(link) || this.down.size > 0) return;
    if (this.logged !== 'up') this.logger.info({ backend: this.backend }, this.everUp ? 'channel layer reconnected' : 'channel layer connected');
    this.logged = 'up';
    this.everUp = true;
  }

  failed(link: string, detail: string): void {
    this.down.set(link, detail);
    if (!this.readies.has(link)) this.readies.set(link, -1);
    if (this.logged !== 'down') {
      // Before the first connection nothing was lost: say that Redis cannot be reached.
      const what = this.logged === 'connecting' ? 'cannot reach Redis' : 'lost Redis';
      this.logger.warn({ backend: this.backend, detail: this.detail() }, `channel layer ${what}; reconnecting, cross-process sends fail meanwhile`);
      this.logged = 'down';
    }
    for (const wake of this.downWaiters.splice(0)) wake();
  }

  get isUp(): boolean {
    return this.down.size === 0;
  }

  /** What is wrong with one link (its last error, or 'connecting'); undefined while it is up. */
  problem(link: string): string | undefined {
    return this.down.get(link);
  }

  /** Resolves at the next failure, or at once when a link has already failed (not merely connecting). */
  nextFailure(): Promise<void> {
    if (this.logged === 'down' && !this.isUp) return Promise.resolve();
    return new Promise((resolve) => this.downWaiters.push(resolve));
  }

  /** Releases anyone waiting in `nextFailure` (on close, or once started). */
  release(): void {
    for (const wake of this.downWaiters.splice(0)) wake();
  }

  detail(): string {
    return Array.from(this.down, ([link, problem]) => `${link}: ${problem}`).join('; ');
  }

  forEachLink(visit: (link: string, up: boolean, reconnects: number) => void): void {
    for (const [link, readies] of this.readies) visit(link, !this.down.has(link), Math.max(0, readies));
  }

  health(): LayerHealth {
    return this.isUp ? { state: 'up', backend: this.backend } : { state: 'degraded', backend: this.backend, detail: this.detail() };
  }
}

/**
 * Counts messages a full channel could not take where no sender can be told ChannelFull: sent by
 * another process (a PUBLISH, a message popped from Redis) or skipped by a group send. Never
 * silent: each is counted, and logged at the 1st, 2nd, 4th, 8th... so a stuck reader cannot flood
 * the log.
 */
export class FullChannelSkips {
  /** Messages skipped so far. */
  count = 0;

  constructor(
    private readonly backend: string,
    private readonly logger: LayerLogger | undefined,
  ) {}

  /** `n` messages for `target` (a channel, or a group's keys in Redis) were not delivered. */
  skipped(target: string, n = 1): void {
    const before = this.count;
    this.count += n;
    if (before !== 0 && Math.clz32(before) === Math.clz32(this.count)) return;
    this.logger?.warn(
      { backend: this.backend, channel: target, skipped: this.count },
      'channel layer: channel full, a message was skipped (its reader is not keeping up; raise capacity)',
    );
  }
}
