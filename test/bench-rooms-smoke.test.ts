// S7 end to end at a tiny size: a private Redis, two channelkit servers, clients joining and leaving rooms over
// their open sockets while the outside publisher sends; the row must say delivery stayed exact. No timings asserted.
import { execFile } from 'node:child_process';
import { join } from 'node:path';

test('npm run bench prints an exact S7 row for channelkit', async () => {
  const root = join(__dirname, '..');
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        join(root, 'bench', 'run.ts'),
        '--quick',
        '--scenarios=s7',
        '--only=channelkit',
        '--s7-clients=10',
        '--s7-rooms=20',
        '--s7-seconds=1',
        '--s7-rate=200',
      ],
      { cwd: root, timeout: 110_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
  expect(output).toMatch(/S7 room churn/);
  // system, joins+leaves /s, joins, exact
  expect(output).toMatch(/\| channelkit +\| +[\d,]+ \| +[\d,]+ \| +yes \|/);
}, 120_000);
