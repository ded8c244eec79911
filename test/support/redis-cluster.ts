// A private Redis Cluster for tests: three masters on free loopback ports, never the shared Redis.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RedisServer } from './redis';

const run = promisify(execFile);

export class RedisCluster {
  private constructor(
    readonly servers: RedisServer[],
    private readonly dirs: string[],
  ) {}

  /** Starts `masters` cluster-enabled servers, joins them with `redis-cli --cluster create`, waits for state ok. */
  static async start(masters = 3): Promise<RedisCluster> {
    const dirs = Array.from({ length: masters }, () => mkdtempSync(join(tmpdir(), 'channelkit-cluster-')));
    const servers = await Promise.all(
      dirs.map((dir) =>
        RedisServer.start({
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000'],
        }),
      ),
    );
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
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(
        this.servers.map(async (server) => (await run('redis-cli', ['-p', String(server.port), 'cluster', 'info'])).stdout),
      );
      if (states.every((info) => info.includes('cluster_state:ok'))) return;
      if (Date.now() > deadline) throw new Error(`Redis Cluster not ok after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.close()));
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}
