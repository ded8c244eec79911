import { RedisChannelLayer } from '../../src/layers/redis';
import { describeRedis, RedisServer } from '../support/redis';
import { describeLayerConformance } from './conformance';

describeRedis('RedisChannelLayer on one private redis-server', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server.close();
  });

  describeLayerConformance('RedisChannelLayer', {
    create: async (options) => new RedisChannelLayer({ url: server.url, ...options }),
    shared: true,
    subSecondExpiry: false,
  });
});

describeRedis('RedisChannelLayer sharded over two private redis-servers', () => {
  let servers: RedisServer[];
  beforeAll(async () => {
    servers = await Promise.all([RedisServer.start(), RedisServer.start()]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.close()));
  });

  describeLayerConformance('RedisChannelLayer (2 hosts)', {
    create: async (options) => new RedisChannelLayer({ urls: servers.map((server) => server.url), ...options }),
    shared: true,
    subSecondExpiry: false,
  });
});
