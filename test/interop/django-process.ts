// Runs test/interop/django_layer.py (a real Django Channels process) and reads its JSON lines.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = join(__dirname, 'django_layer.py');

/** Why Django Channels interop cannot run here, or null when /usr/bin/python3 has channels_redis. */
export function djangoUnavailable(): string | null {
  try {
    execFileSync(PYTHON, ['-c', 'import django, channels, channels_redis.core, channels_redis.pubsub'], { stdio: 'pipe' });
    return null;
  } catch (error) {
    return `${PYTHON} cannot import django, channels and channels_redis (${(error as Error).message.split('\n')[0]})`;
  }
}

export type DjangoBackend = 'core' | 'pubsub';

export interface DjangoLine {
  ready?: string;
  message?: Record<string, unknown>;
  timeout?: string;
  done?: boolean;
}

/** One Django process; `next()` resolves with its next stdout line, parsed. */
export class DjangoProcess {
  private readonly child: ChildProcess;
  private readonly lines: DjangoLine[] = [];
  private readonly waiters: Array<(line: DjangoLine) => void> = [];
  private stderr = '';
  readonly exited: Promise<number | null>;

  /** `keys`: the layer's `symmetric_encryption_keys` (the first encrypts); none by default. */
  constructor(backend: DjangoBackend, urls: string[], args: string[], keys: string[] = []) {
    const env = { ...process.env, CHANNEL_LAYER_KEYS: keys.join(',') };
    this.child = spawn(PYTHON, [SCRIPT, backend, urls.join(','), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    createInterface({ input: this.child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as DjangoLine;
      const waiter = this.waiters.shift();
      if (waiter) waiter(line);
      else this.lines.push(line);
    });
    // 'close', not 'exit': it comes after stdout is drained, so no line is lost.
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  /** The next line; fails with the process's stderr when it exits first. */
  async next(): Promise<DjangoLine> {
    const queued = this.lines.shift();
    if (queued) return queued;
    const line = new Promise<DjangoLine>((resolve) => this.waiters.push(resolve));
    const exit = this.exited.then((code) => {
      throw new Error(`django_layer.py exited with ${code} before printing a line:\n${this.stderr}`);
    });
    return Promise.race([line, exit]);
  }

  /** The channel the process receives on, once it is listening. */
  async ready(): Promise<string> {
    const line = await this.next();
    if (!line.ready) throw new Error(`expected a ready line, got ${JSON.stringify(line)}\n${this.stderr}`);
    return line.ready;
  }

  async message(): Promise<Record<string, unknown>> {
    const line = await this.next();
    if (!line.message) throw new Error(`expected a message, got ${JSON.stringify(line)}\n${this.stderr}`);
    return line.message;
  }

  /** Waits for a clean exit (status 0), with the process's stderr in the failure. */
  async succeeded(): Promise<void> {
    const code = await this.exited;
    if (code !== 0) throw new Error(`django_layer.py exited with ${code}:\n${this.stderr}`);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
