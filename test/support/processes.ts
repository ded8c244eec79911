// Runs the real `channelkit` CLI in child processes, as `npm start` does (TypeScript via ts-node).
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'src', 'cli.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `channelkit <args>` to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', CLI, ...args], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
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
