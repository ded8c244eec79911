// A private Redis Cluster for tests: three masters on free loopback ports, never the shared Redis.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RedisServer, freePort } from './redis';
import { until } from './wait';

const run = promisify(execFile);

export class RedisCluster {
  private constructor(
    readonly servers: RedisServer[],
    private readonly dirs: string[],
  ) {}

  /** Starts `masters` cluster-enabled servers, joins them with `redis-cli --cluster create`, waits for state ok. */
  static async start(masters = 3): Promise<RedisCluster> {
    const dirs = Array.from({ length: masters }, () => mkdtempSync(join(tmpdir(), 'channelkit-cluster-')));
    const servers = await startNodes(dirs);
    const cluster = new RedisCluster(servers, dirs);
    try {
      await run('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-yes']);
      await cluster.waitUntilOk();
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** Seed node URLs for `createCluster`. */
  get urls(): string[] {
    return this.servers.map((server) => server.url);
  }

  /** Every node must agree (cluster_state:ok), or the first commands get CLUSTERDOWN. */
  private async waitUntilOk(timeoutMs = 15000): Promise<void> {
    await until(
      async () => {
        const states = await Promise.all(
          this.servers.map(async (server) => (await run('redis-cli', ['-p', String(server.port), 'cluster', 'info'])).stdout),
        );
        return states.every((info) => info.includes('cluster_state:ok'));
      },
      timeoutMs,
      'Redis Cluster: cluster_state:ok on every node',
      100,
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.close()));
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** True when nothing listens on `port` (checked by binding it for a moment). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * A node also listens on its cluster bus, port + 10000: that must exist (< 65536) and be free too,
 * or redis-server exits at start. Ephemeral ports (often 32768-60999) miss this about a fifth of the time.
 */
async function clusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10000 <= 65535 && (await portIsFree(port + 10000))) return port;
  }
}

/** Starts one node per dir; a node that loses a port race is retried, and none is left running on failure. */
async function startNodes(dirs: string[]): Promise<RedisServer[]> {
  const startOne = async (dir: string): Promise<RedisServer> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await RedisServer.start({
          port: await clusterPort(),
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000'],
        });
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  };
  const results = await Promise.allSettled(dirs.map(startOne));
  const started = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((server) => server.close()));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    throw failed.reason;
  }
  return started;
}
