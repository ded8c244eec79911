// The private redis-server a cross-process scenario runs on (S3, S6, S7, H), with the admin connection that
// reads its counters (INFO, CLIENT LIST); never the shared one on 6379.
import { createClient } from 'redis';
import { RedisServer } from '../../test/support/redis';
import type { RedisClient } from './redis-cost';

export class BenchRedis {
  private constructor(
    private readonly server: RedisServer,
    readonly admin: RedisClient,
  ) {}

  static async start(): Promise<BenchRedis> {
    const server = await RedisServer.start();
    const admin: RedisClient = createClient({ url: server.url });
    // The bench reads counters; a failed read shows in its figures, not as an unhandled 'error'.
    admin.on('error', () => undefined);
    await admin.connect();
    return new BenchRedis(server, admin);
  }

  get url(): string {
    return this.server.url;
  }

  async close(): Promise<void> {
    await this.admin.quit().catch(() => undefined);
    await this.server.close();
  }
}
