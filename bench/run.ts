// `npm run bench [-- --quick] [--only=channelkit,naive] [--scenarios=s1,s2,s3,s4,s5,h,g,c,s6,s7] [--profile]`
// Each system is a child process server on a free loopback port; the load generators are child processes too.
import { join } from 'node:path';
import type { Scenario } from './harness';
import { profile, quick, scenarios, systems } from './options';
import { summarizeProfile } from './profile-top';
import { s1Scenario } from './scenarios/s1-idle-memory';
import { s2Scenario } from './scenarios/s2-fanout';
import { s3Scenario } from './scenarios/s3-redis';
import { s4Scenario } from './scenarios/s4-churn';
import { s5Scenario } from './scenarios/s5-broadcast';
import { hScenario } from './scenarios/h-history-presence';
import { gScenario } from './scenarios/g-cost-growth';
import { cScenario } from './scenarios/c-compression';
import { s6Scenario } from './scenarios/s6-small-rooms';
import { s7Scenario } from './scenarios/s7-room-churn';

async function main(): Promise<void> {
  const os = require('node:os') as typeof import('node:os');
  const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`channelkit bench${quick ? ' (quick)' : ''}: node ${process.version}, ${os.cpus().length} CPUs, systems: ${systems.join(', ')}; load average before: ${load()}`);
  process.on('exit', () => console.log(`\nload average after: ${load()} (other work on the machine skews the figures; compare ratios within one run)`));
  await scenario(s1Scenario);
  await scenario(s2Scenario);
  await scenario(s3Scenario);
  await scenario(s4Scenario);
  await scenario(s5Scenario);
  await scenario(hScenario);
  await scenario(gScenario);
  await scenario(cScenario);
  await scenario(s6Scenario);
  await scenario(s7Scenario);
}

/**
 * Runs one scenario for each of its systems in turn (never two at once: they would share the 2 cores), prints its
 * table, and with --profile the summary of channelkit's CPU profile.
 */
async function scenario<Row>({ name, which, run, print, profiled }: Scenario<Row>): Promise<void> {
  if (!scenarios.includes(name)) return;
  const rows: Row[] = [];
  for (const system of which(systems)) {
    process.stderr.write(`${name.toUpperCase()} ${system}...\n`);
    rows.push(await run(system));
  }
  print(rows);
  if (profiled && profile && systems.includes('channelkit')) console.log('\n' + summarizeProfile(join(__dirname, 'profiles', name), 25));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
