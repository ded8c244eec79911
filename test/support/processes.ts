// Runs the real `channelkit` CLI in child processes, as `npm start` does (TypeScript via ts-node).
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'src', 'cli.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The command was still running at the deadline and was killed: it hung. */
  killed: boolean;
}

/**
 * Runs `channelkit <args>` to completion. One still running after `ms` is killed (SIGKILL) and comes back
 * with `killed`, so a command that hangs fails its test by name instead of by the test's timeout.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv, ms = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', CLI, ...args], {
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

/**
 * A long-running `channelkit` process (`serve` by default); `ready` resolves once it logs `readyMessage`
 * (with the port, for a server).
 */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<number>;
  output = '';

  constructor(env: NodeJS.ProcessEnv, args: string[] = ['serve']) {
    this.child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', CLI, ...args], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'info', PORT: '0', ...env },
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.stdout!.on('data', (chunk: Buffer) => {
        this.output += chunk.toString();
        const match = /"port":(\d+),"msg":"listening"/.exec(this.output);
        if (match) resolve(Number(match[1]));
        if (this.output.includes('"msg":"worker started"')) resolve(0);
      });
      this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
      this.child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${this.output}`)));
    });
    this.ready.catch(() => undefined);
  }

  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return Promise.resolve(this.child.exitCode);
    // 'close', not 'exit': 'exit' can come before the last of the child's output has been read.
    const exited = new Promise<number | null>((resolve) => this.child.once('close', (code) => resolve(code)));
    this.child.kill('SIGTERM');
    return exited;
  }
}
