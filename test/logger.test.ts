import { spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');

/**
 * A process that logs a burst and exits through `logger.flush` (as `channelkit serve` does on SIGTERM)
 * must not lose lines when its reader is slow: its stdout pipe fills, and an asynchronous destination
 * would still hold lines when the process exits.
 */
test('every line logged before a flushed exit reaches a slow reader', async () => {
  const LINES = 3000;
  const script =
    `const { createLogger } = require('./src/logger');` +
    `const logger = createLogger('info');` +
    `for (let i = 0; i < ${LINES}; i++) logger.info({ event: 'disconnect', i, padding: 'x'.repeat(100) }, 'disconnect');` +
    // Exit a moment later, while a write is stuck on the full pipe.
    `setTimeout(() => logger.flush(() => process.exit(0)), 100);`;
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'info' } });
  // Read nothing for a while: the 64 KiB pipe fills long before the burst ends.
  child.stdout.pause();
  await new Promise((resolve) => setTimeout(resolve, 500));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code).toBe(0);
  const lines = output.split('\n').filter(Boolean);
  expect(lines.length).toBe(LINES);
  expect((JSON.parse(lines[LINES - 1]) as { i: number }).i).toBe(LINES - 1);
}, 20_000);
