// S7 end to end at a tiny size: a private Redis, two channelkit servers, clients joining and leaving rooms over
// their open sockets while the outside publisher sends; the row must say delivery stayed exact. No timings asserted.
import { runBench } from './support/bench';

test('npm run bench prints an exact S7 row for channelkit', async () => {
  const output = await runBench(
    ['--quick', '--scenarios=s7', '--only=channelkit', '--s7-clients=10', '--s7-rooms=20', '--s7-seconds=1', '--s7-rate=200'],
    110_000,
  );
  expect(output).toMatch(/S7 room churn/);
  // system, joins+leaves /s, joins, exact
  expect(output).toMatch(/\| channelkit +\| +[\d,]+ \| +[\d,]+ \| +yes \|/);
}, 120_000);
