// The bench starts and prints a table row (a tiny S2 of the ceiling probe). No timings are asserted.
import { runBench } from './support/bench';

test('npm run bench starts and prints an S2 row', async () => {
  const output = await runBench(
    ['--quick', '--scenarios=s2', '--only=ceiling', '--s2-clients=20', '--s2-seconds=0.5', '--warmup-ms=0'],
    18_000,
  );
  expect(output).toMatch(/S2 local fan-out/);
  expect(output).toMatch(/\| ceiling probe +\| +[\d,]+ \|/);
}, 20_000);
