// The bench starts and prints a table row (a tiny S2 of the ceiling probe). No timings are asserted.
import { execFile } from 'node:child_process';
import { join } from 'node:path';

test('npm run bench starts and prints an S2 row', async () => {
  const root = join(__dirname, '..');
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        join(root, 'bench', 'run.ts'),
        '--quick',
        '--scenarios=s2',
        '--only=ceiling',
        '--s2-clients=20',
        '--s2-seconds=0.5',
        '--warmup-ms=0',
      ],
      { cwd: root, timeout: 18_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
  expect(output).toMatch(/S2 local fan-out/);
  expect(output).toMatch(/\| ceiling probe +\| +[\d,]+ \|/);
}, 20_000);
