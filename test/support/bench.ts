// Runs `npm run bench` (bench/run.ts) with the given options in a child process and returns what it printed.
import { execFile } from 'node:child_process';
import { join } from 'node:path';

export function runBench(options: string[], timeoutMs: number): Promise<string> {
  const root = join(__dirname, '..', '..');
  return new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', join(root, 'bench', 'run.ts'), ...options],
      { cwd: root, timeout: timeoutMs },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
}
