// A child process (a system's server, a load generator, the publisher) spoken to over IPC.
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { LoadgenCommand, LoadgenReply, ServerCommand, ServerReply } from './protocol';

export const TS_NODE = require.resolve('ts-node/register/transpile-only');

/** A child process spoken to over IPC: request() sends a command and waits for a reply of one type. */
export class Child<C, R extends { type: string }> {
  private readonly inbox: R[] = [];
  private waiters: { type: string; resolve: (r: R) => void }[] = [];
  readonly exited: Promise<number | null>;
  /** Receives 'progress' messages instead of the inbox (the credit relay). */
  onProgress: ((message: R) => void) | null = null;

  constructor(readonly proc: ChildProcess, readonly name: string) {
    proc.on('message', (message: R) => {
      if (message.type === 'progress') {
        this.onProgress?.(message);
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === message.type);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(message);
      else this.inbox.push(message);
    });
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    void this.exited.then((code) => {
      for (const w of this.waiters) w.resolve({ type: 'exit', code } as unknown as R);
      this.waiters = [];
    });
  }

  wait<T extends R['type']>(type: T, timeoutMs = 60_000): Promise<Extract<R, { type: T }>> {
    const i = this.inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as Extract<R, { type: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        type,
        resolve: (r) => {
          clearTimeout(timer);
          if (r.type !== type) reject(new Error(`${this.name} exited`));
          else resolve(r as Extract<R, { type: T }>);
        },
      });
    });
  }

  send(command: C): void {
    if (this.proc.connected) this.proc.send(command as object);
  }

  request<T extends R['type']>(command: C, type: T, timeoutMs?: number): Promise<Extract<R, { type: T }>> {
    const reply = this.wait(type, timeoutMs);
    this.send(command);
    return reply;
  }

  async stop(): Promise<void> {
    this.send({ cmd: 'exit' } as C);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export type ServerChild = Child<ServerCommand, ServerReply>;
export type LoadgenChild = Child<LoadgenCommand, LoadgenReply>;

/**
 * BENCH_SERVER_NODE_ARGS: Node flags for every server process (not the load generators), e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` for every system, or `--trace-deopt`; NODE_OPTIONS refuses some.
 */
const serverNodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];

export function spawn(file: string, extraArgs: string[] = [], env: Record<string, string> = {}, args: string[] = []): ChildProcess {
  return fork(join(__dirname, file), args, {
    execArgv: ['-r', TS_NODE, '--expose-gc', ...(file.startsWith('servers/') ? serverNodeArgs : []), ...extraArgs],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ...env },
  });
}
