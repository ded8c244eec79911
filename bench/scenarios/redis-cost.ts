// The Redis cost of a scenario: commands per group send (INFO commandstats) and subscriptions held (CLIENT LIST).
import type { createClient } from 'redis';

export type RedisClient = ReturnType<typeof createClient>;

export async function commandStats(redis: RedisClient): Promise<Map<string, number>> {
  const text = await redis.info('commandstats');
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** Total SUBSCRIBE channels and PSUBSCRIBE patterns held by all Redis connections (CLIENT LIST's sub= and psub=). */
export async function subscriptions(redis: RedisClient): Promise<[number, number]> {
  const text = String(await redis.sendCommand(['CLIENT', 'LIST']));
  let sub = 0;
  let psub = 0;
  for (const line of text.split('\n')) {
    sub += Number(/ sub=(\d+)/.exec(line)?.[1] ?? 0) + Number(/ ssub=(\d+)/.exec(line)?.[1] ?? 0);
    psub += Number(/ psub=(\d+)/.exec(line)?.[1] ?? 0);
  }
  return [sub, psub];
}
