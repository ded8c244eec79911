// What the history conformance cases need from a private Redis (one host, several, or a Cluster): flush, restart, watch, publish raw.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createClient, createCluster } from 'redis';
import { createPublisher } from '../../../src/publisher';
import { consistentHash } from '../../../src/layers/redis/consistent-hash';
import type { RedisServer } from '../../support/redis';
import { until } from '../../support/wait';
import type { RedisControl } from '../history-conformance';

const run = promisify(execFile);

/** INFO commandstats `calls` of `command`, summed over `servers`. */
export function commandCalls(servers: RedisServer[], command: string): number {
  let total = 0;
  for (const server of servers) {
    const line = server.cli('INFO', 'commandstats').split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
    if (line) total += Number(/calls=(\d+)/.exec(line)![1]);
  }
  return total;
}

/** Plain Redis hosts (a pub/sub layer over `servers()`, sharded as channels_redis when several). */
export function hostsControl(servers: () => RedisServer[]): RedisControl {
  const urls = () => servers().map((server) => server.url);
  return {
    flushAll: async () => {
      for (const server of servers()) server.cli('FLUSHALL');
    },
    restart: async () => {
      for (const server of servers()) {
        await server.stop();
        await server.start();
      }
    },
    calls: (command) => commandCalls(servers(), command),
    publishRaw: async (channel, bytes) => {
      const client = createClient({ url: urls()[consistentHash(channel, servers().length)] });
      client.on('error', () => {});
      await client.connect();
      try {
        await client.publish(channel, bytes);
      } finally {
        await client.close();
      }
    },
    publisher: () => createPublisher({ urls: urls() }),
    cliEnv: () => ({ REDIS_URL: urls().join(','), REDIS_CLUSTER_URL: '', CHANNEL_LAYER: '' }),
  };
}

/** A Redis Cluster of `servers()` (sharded pub/sub). */
export function clusterControl(servers: () => RedisServer[]): RedisControl {
  const urls = () => servers().map((server) => server.url);
  return {
    flushAll: async () => {
      for (const server of servers()) server.cli('FLUSHALL');
    },
    restart: async () => {
      for (const server of servers()) await server.stop();
      for (const server of servers()) await server.start();
      await until(
        async () => {
          const states = await Promise.all(servers().map(async (server) => (await run('redis-cli', ['-p', String(server.port), 'cluster', 'info'])).stdout));
          return states.every((info) => info.includes('cluster_state:ok'));
        },
        20_000,
        'cluster_state:ok after the restart',
        100,
      );
    },
    calls: (command) => commandCalls(servers(), command),
    publishRaw: async (channel, bytes) => {
      const cluster = createCluster({ rootNodes: urls().map((url) => ({ url })) });
      cluster.on('error', () => {});
      await cluster.connect();
      try {
        await cluster.sPublish(channel, bytes);
      } finally {
        await cluster.close();
      }
    },
    publisher: () => createPublisher({ clusterUrl: urls() }),
    cliEnv: () => ({ REDIS_CLUSTER_URL: urls().join(','), REDIS_URL: '', CHANNEL_LAYER: '' }),
  };
}
