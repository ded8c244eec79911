// The `channelkit` command as a user meets it: startup errors, messages, layers, exit codes.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type CliResult, ServerProcess, runCli } from './support/processes';
import { Inbox, handshakeStatus, openClient } from './support/sockets';

const ROOT = join(__dirname, '..');
/** No Redis from the environment running the tests leaks into a child unless a test sets it. */
const NO_REDIS = { REDIS_URL: '', REDIS_CLUSTER_URL: '', CHANNEL_LAYER: '', PORT: '0' };

/** runCli, but a process still running after `ms` is killed: a command that should have failed at startup. */
function runCliWithin(args: string[], env: NodeJS.ProcessEnv, ms = 8000): Promise<CliResult & { killed: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(ROOT, 'src', 'cli.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, ms);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, killed });
    });
  });
}

describe('channelkit serve: route mistakes fail at startup', () => {
  test('a routing module without `application` exits non-zero naming the file and the reason', async () => {
    const result = await runCliWithin(['serve', 'test/fixtures/no-application.ts'], NO_REDIS);
    expect(result.killed).toBe(false);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(join(ROOT, 'test', 'fixtures', 'no-application.ts'));
    expect(result.stderr).toMatch(/exports no `application`/);
  });

  test('an unbalanced route pattern exits non-zero naming the file and the pattern', async () => {
    const result = await runCliWithin(['serve', 'test/fixtures/bad-route.ts'], NO_REDIS);
    expect(result.killed).toBe(false);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(join(ROOT, 'test', 'fixtures', 'bad-route.ts'));
    expect(result.stderr).toMatch(/unbalanced parentheses/);
  });

  test('a routing module that does not exist exits non-zero naming it', async () => {
    const result = await runCli(['serve', 'test/fixtures/missing.ts'], NO_REDIS);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(join(ROOT, 'test', 'fixtures', 'missing.ts'));
  });
});

describe("channelkit serve with the user's own TypeScript module importing 'channelkit'", () => {
  test('answers 404 for an unknown path and serves the consumer (one copy of the framework)', async () => {
    const server = new ServerProcess(NO_REDIS, ['serve', 'test/fixtures/app-routing.ts']);
    try {
      const port = await server.ready;
      expect(await handshakeStatus(`ws://127.0.0.1:${port}/ws/nowhere/`)).toBe(404);
      expect(await handshakeStatus(`ws://127.0.0.1:${port}/ws/echo/x/`)).toBe(404);
      const ws = await openClient(`ws://127.0.0.1:${port}/ws/echo/41/`);
      const inbox = new Inbox(ws);
      ws.send(JSON.stringify({ hi: 1 }));
      expect(await inbox.nextJson()).toEqual({ next: 42, value: { hi: 1 } });
      ws.close();
      await inbox.closed;
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(server.output).not.toMatch(/handshake failed/);
  });
});
