import { spawn } from 'node:child_process';
import { join } from 'node:path';

const HOST = join(__dirname, '..', 'support', 'cluster-layer-host.ts');

describe('the workers layer over a real node:cluster IPC channel', () => {
  test("a worker's sends to another worker's channel arrive in order with bytes intact, and its group send after them", async () => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', HOST], { cwd: join(__dirname, '..', '..') });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const { received } = JSON.parse(stdout.trim()) as { received: Array<Record<string, unknown>> };
    expect(received).toEqual([
      ...Array.from({ length: 50 }, (_, n) => ({ type: 'seq', n, bytes: [n, 255] })),
      { type: 'group', text: 'héllo ✓' },
    ]);
  }, 60_000);
});
