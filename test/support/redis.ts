// Private redis-server processes for tests and the bench: never the shared Redis on 6379.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `describe` when redis-server exists; otherwise skipped (global-setup prints why, and fails under CI). */
export function describeRedis(name: string, body: () => void): void {
  (hasRedisServer() ? describe : describe.skip)(name, body);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServerOptions {
  /** Extra `redis-server` arguments, e.g. ['--cluster-enabled', 'yes']. */
  args?: string[];
  /** Reuse this port (to restart a server where it was). */
  port?: number;
  /** A config file's text, written to the server's directory and passed first (Sentinel needs a writable one). */
  config?: string;
  /** Run as a Sentinel (`--sentinel`; `config` must name the masters to monitor). */
  sentinel?: boolean;
  /** The password `cli()` gives (the server's own config sets it). Default none. */
  password?: string;
}

/** One private redis-server on a free loopback port, with nothing persisted. */
export class RedisServer {
  private child: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'channelkit-redis-'));

  private password: string | undefined;
  /** The server's last log lines, for a test that fails to say what the server saw (a Sentinel's election, say). */
  private readonly recent: string[] = [];

  private constructor(
    readonly port: number,
    private readonly args: string[],
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(options.port ?? (await freePort()), options.args ?? []);
    if (options.config !== undefined) {
      const file = join(server.dir, 'redis.conf');
      writeFileSync(file, options.config);
      server.args.unshift(file);
    }
    if (options.sentinel) server.args.push('--sentinel');
    server.password = options.password;
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    // `this.args` are kept, so a restart on the same port runs with the same settings.
    if (this.child && this.child.exitCode === null) throw new Error(`redis-server on ${this.port} is already running`);
    // The config file, when there is one, must come first; Sentinel takes no persistence options.
    const [config, rest] = this.args[0]?.endsWith('.conf') ? [[this.args[0]], this.args.slice(1)] : [[], this.args];
    const sentinel = rest.includes('--sentinel');
    const persistence = sentinel ? [] : ['--save', '', '--appendonly', 'no'];
    const child = spawn(
      'redis-server',
      [...config, '--port', String(this.port), '--bind', '127.0.0.1', ...persistence, '--dir', this.dir, ...rest],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const readyLine = sentinel ? 'Sentinel ID is' : 'Ready to accept connections';
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes(readyLine)) {
          child.stdout!.off('data', onData);
          child.stdout!.on('data', (more: Buffer) => this.remember(more.toString()));
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.resume();
      child.once('error', (error) => reject(new Error(`cannot start redis-server (is it installed?): ${error.message}`)));
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
    });
  }

  /** Stops the server (SIGKILL, like a crash); `start()` brings it back on the same port. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    this.child = null;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** The last 40 lines this server logged since it was ready. */
  log(): string {
    return this.recent.join('\n');
  }

  private remember(text: string): void {
    for (const line of text.split('\n')) if (line) this.recent.push(line);
    this.recent.splice(0, this.recent.length - 40);
  }

  cli(...args: string[]): string {
    const auth = this.password ? ['-a', this.password, '--no-auth-warning'] : [];
    return execFileSync('redis-cli', ['-p', String(this.port), ...auth, ...args], { encoding: 'utf8' });
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A master, its replica and three Sentinels watching them (quorum 2), all private; `close()` stops what is left. */
export interface SentinelGroup {
  master: RedisServer;
  replica: RedisServer;
  sentinels: RedisServer[];
  /** 'host:port' of each Sentinel, for REDIS_SENTINELS. */
  addresses: string[];
  /** The master's address as Sentinel `sentinels[i]` names it now ('127.0.0.1:port'), or null. */
  currentMaster(i?: number): string | null;
  /** Each Sentinel's last log lines (failure detection, votes, election), for a failover that did not happen. */
  sentinelLogs(): string;
  close(): Promise<void>;
}

/**
 * Starts the group and waits until every Sentinel knows the replica and the other two Sentinels, so a
 * failover can be agreed on. Failure detection after 1 s (`down-after-milliseconds`). `serverArgs` go to
 * the master and the replica, `sentinelConfig` lines to each Sentinel's config (passwords, say);
 * `password` is what `cli()` authenticates with on all of them.
 */
export async function startSentinelGroup(masterName: string, serverArgs: string[] = [], sentinelConfig: string[] = [], password?: string): Promise<SentinelGroup> {
  const master = await RedisServer.start({ args: serverArgs, password });
  const replica = await RedisServer.start({ args: [...serverArgs, '--replicaof', '127.0.0.1', String(master.port)], password });
  const config = [
    `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
    `sentinel down-after-milliseconds ${masterName} 1000`,
    `sentinel failover-timeout ${masterName} 5000`,
    `sentinel parallel-syncs ${masterName} 1`,
    ...sentinelConfig,
    '',
  ].join('\n');
  const sentinels = await Promise.all([0, 1, 2].map(() => RedisServer.start({ config, sentinel: true, password })));
  const group: SentinelGroup = {
    master,
    replica,
    sentinels,
    addresses: sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`),
    currentMaster(i = 0) {
      const [host, port] = sentinels[i].cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName).trim().split('\n');
      return host && port ? `${host}:${port}` : null;
    },
    sentinelLogs() {
      return sentinels.map((sentinel) => `Sentinel on ${sentinel.port}:\n${sentinel.log()}`).join('\n');
    },
    async close() {
      await Promise.all([master, replica, ...sentinels].map((server) => server.close()));
    },
  };
  // Sentinels find the replica through the master's INFO, and each other through hello messages (every 2 s).
  const deadline = Date.now() + 20_000;
  for (;;) {
    const known = sentinels.every((sentinel) => {
      const info = sentinel.cli('SENTINEL', 'MASTER', masterName);
      return /num-slaves\n1\n/.test(info) && /num-other-sentinels\n2\n/.test(info);
    });
    if (known) return group;
    if (Date.now() > deadline) {
      await group.close();
      throw new Error('the Sentinels did not discover the replica and each other within 20 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * For a describe block: one private redis-server (started before its tests, stopped after) and
 * `make(options)`, a layer on it that is closed after each test. `server` is read inside tests.
 */
export function layersOnPrivateRedis<L extends { close(): Promise<void> }, O>(
  create: (url: string, options: O) => L,
): { make(options?: O): L; readonly server: RedisServer } {
  let server: RedisServer | null = null;
  const layers: L[] = [];
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterEach(async () => {
    await Promise.all(layers.splice(0).map((layer) => layer.close()));
  });
  afterAll(async () => {
    await server?.close();
  });
  return {
    make(options = {} as O) {
      const layer = create(server!.url, options);
      layers.push(layer);
      return layer;
    },
    get server() {
      return server!;
    },
  };
}
