// Debian's Prometheus tools for tests: `promtool check metrics`, and a private `prometheus` that scrapes a test's server.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis';
import { poll } from './wait';

function hasBinary(name: string): boolean {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * `describe` when `binary` exists. Without it the suite is skipped with a loud notice, except under
 * CI=true, where a missing tool is a failure (.ci/run installs it).
 */
export function describeWithBinary(binary: string, name: string, body: () => void): void {
  if (hasBinary(binary)) return describe(name, body);
  const notice = `${binary} not found: "${name}" is SKIPPED (apt-get install prometheus)`;
  if (process.env.CI === 'true') {
    describe(name, () => test(`${binary} is installed`, () => {
      throw new Error(`${notice}; under CI=true this is a failure`);
    }));
    return;
  }
  process.stderr.write(`\n${'!'.repeat(100)}\n!!! ${notice}\n${'!'.repeat(100)}\n\n`);
  describe.skip(name, body);
}

/** `promtool check metrics` on `exposition`: its exit code and what it printed (its lint findings). */
export function promtoolCheckMetrics(exposition: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(exposition);
  });
}

/** One sample of a Prometheus instant query: its labels and value. */
export interface QuerySample {
  metric: Record<string, string>;
  value: number;
}

/** A private Prometheus on a free loopback port, scraping `targets` every second, its data in a temporary directory. */
export class PrometheusServer {
  private readonly dir = mkdtempSync(join(tmpdir(), 'channelkit-prometheus-'));
  private child: ChildProcess | null = null;
  private output = '';

  private constructor(readonly port: number) {}

  /** Starts it and resolves once it answers `/-/ready`. `targets`: host:port pairs serving /metrics. */
  static async start(targets: string[]): Promise<PrometheusServer> {
    const server = new PrometheusServer(await freePort());
    await server.run(targets);
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private async run(targets: string[]): Promise<void> {
    const config = join(this.dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: channelkit',
        '    static_configs:',
        `      - targets: [${targets.map((target) => `'${target}'`).join(', ')}]`,
        '',
      ].join('\n'),
    );
    const child = spawn(
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${join(this.dir, 'data')}`, `--web.listen-address=127.0.0.1:${this.port}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(false)));
    const ready = poll(async () => (await fetch(`${this.url}/-/ready`).catch(() => null))?.status === 200, 30_000, 100);
    if (!(await Promise.race([ready, exited]))) throw new Error(`prometheus did not become ready: ${this.output.slice(-2000)}`);
  }

  /** An instant query through the HTTP API (`/api/v1/query`): its samples, or [] when nothing matches. */
  async query(expression: string): Promise<QuerySample[]> {
    const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expression)}`);
    const body = (await response.json()) as {
      status: string;
      error?: string;
      data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== 'success') throw new Error(`query ${expression} failed: ${body.error}`);
    return body.data!.result.map(({ metric, value }) => ({ metric, value: Number(value[1]) }));
  }

  /** The one value `expression` gives, or null when it gives none. */
  async value(expression: string): Promise<number | null> {
    const result = await this.query(expression);
    return result.length === 0 ? null : result[0].value;
  }

  /** Stops it (SIGTERM, waiting for its exit) and removes its data. */
  async close(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
