// Prints SUBSCRIBE+UNSUBSCRIBE commands per join under room churn on a private redis-server (issue 12's before/after figure).
// Run: npx ts-node --transpile-only test/layers/redis/churn-figure.ts [seconds per case, default 3]
// It uses only what every version of the layer has (no new option), so the same file measures an older checkout.
import { RedisPubSubChannelLayer } from '../../../src/layers/redis/pubsub';
import { RedisServer } from '../../support/redis';
import { runChurn } from './churn';

function commandCalls(server: RedisServer, command: string): number {
  const line = server.cli('INFO', 'commandstats').split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
  return line ? Number(/calls=(\d+)/.exec(line)![1]) : 0;
}

const CASES = [
  { name: 'hot rooms: 200 groups, 30 channels', groups: 200, channels: 30 },
  { name: 'cold rooms: 20000 groups, 30 channels', groups: 20000, channels: 30 },
];

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 3);
  const server = await RedisServer.start();
  try {
    for (const [index, churnCase] of CASES.entries()) {
      const [member, sender] = [new RedisPubSubChannelLayer({ url: server.url }), new RedisPubSubChannelLayer({ url: server.url })];
      await sender.groupSend('warm', { type: 'warm' });
      const before = { sub: commandCalls(server, 'subscribe'), unsub: commandCalls(server, 'unsubscribe') };
      const result = await runChurn({ member, sender, prefix: `c${index}_`, groups: churnCase.groups, channels: churnCase.channels, durationMs: seconds * 1000 });
      // Every member has left: wait out any linger so the UNSUBSCRIBEs it defers are counted too.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const sub = commandCalls(server, 'subscribe') - before.sub;
      const unsub = commandCalls(server, 'unsubscribe') - before.unsub;
      console.log(
        `${churnCase.name}, ${seconds} s: ${result.joins} joins, ${sub} SUBSCRIBE + ${unsub} UNSUBSCRIBE = ` +
          `${((sub + unsub) / result.joins).toFixed(3)} per join (checked ${result.checked}, missing ${result.missing}, duplicates ${result.duplicates}, strays ${result.strays})`,
      );
      await Promise.all([member.close(), sender.close()]);
    }
  } finally {
    await server.close();
  }
}

void main();
