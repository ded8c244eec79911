// One Redis host of the list layer: a command connection, blocking connections for BZPOPMIN, scripts.
import { createHash } from 'node:crypto';
import { RESP_TYPES } from 'redis';
import { LayerClosed, LayerUnavailable } from '../layer';
import { closeClient, type LinkMonitor, noop, openLink, type RedisClient, type RedisTarget, targetName } from './link';

/** Replies as Buffers: members are binary (12 random bytes + msgpack). */
const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;
function bufferView(client: RedisClient) {
  return client.withTypeMapping(BUFFERS);
}

/** A connection of its own for BZPOPMIN, which holds its connection while it waits. */
export interface BlockingConnection {
  client: RedisClient;
  /** The same connection, replying with Buffers. */
  buffers: ReturnType<typeof bufferView>;
}

/** How many idle blocking connections a host keeps for point-to-point `receive` calls. */
const IDLE_BLOCKING = 4;

/**
 * One Redis server of the list layer's host list (a "host"; `shard` is kept for Redis Cluster). Its
 * command connection is a link of the layer's LinkMonitor, which holds its health and logs changes.
 */
export class ListHost {
  readonly commands: RedisClient;
  /** The command connection, replying with Buffers. */
  readonly commandBuffers: ReturnType<typeof bufferView>;
  private readonly blocking = new Set<BlockingConnection>();
  private readonly idle: BlockingConnection[] = [];
  private readonly scripts = new Map<string, string>();
  private everReady = false;
  private closed = false;
  private readonly firstReady: Promise<void>;

  /** The URL without credentials, for logs and health; also the link's name in the monitor. */
  readonly url: string;

  constructor(
    target: RedisTarget,
    ca: string | Buffer | undefined,
    private readonly connectTimeout: number,
    private readonly monitor: LinkMonitor,
    /** Called on every 'ready' of the command connection, the first and each reconnect. */
    onReady: () => void,
  ) {
    this.url = targetName(target);
    this.commands = openLink(target, { connectTimeout, ca }, monitor, this.url);
    this.commandBuffers = bufferView(this.commands);
    this.firstReady = new Promise((resolve) => this.commands.once('ready', resolve));
    this.commands.on('ready', () => {
      this.everReady = true;
      onReady();
    });
  }

  get up(): boolean {
    return this.commands.isReady;
  }

  /** The last connection error, 'connecting' before the first connection, or 'disconnected'. */
  get problem(): string {
    return this.monitor.problem(this.url) ?? 'disconnected';
  }

  /**
   * Resolves when commands can be sent. Only the very first connection is awaited (up to
   * `connectTimeout`), so a layer created at startup works at once; later, a down link fails fast.
   */
  async ready(): Promise<void> {
    if (this.closed) throw new LayerClosed();
    if (this.commands.isReady) return;
    if (this.everReady) throw new LayerUnavailable(`redis ${this.url} is down (${this.problem})`);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, this.connectTimeout, 'timeout').unref()));
    const outcome = await Promise.race([this.firstReady, timedOut]);
    clearTimeout(timer);
    if (this.closed) throw new LayerClosed();
    if (outcome === 'timeout') throw new LayerUnavailable(`cannot connect to redis ${this.url} (${this.problem})`);
  }

  /** Runs a script by SHA, loading it on NOSCRIPT (after a Redis restart or on first use). */
  async run(script: string, keys: Array<string | Buffer>, args: Array<string | Buffer>): Promise<unknown> {
    let sha = this.scripts.get(script);
    if (!sha) this.scripts.set(script, (sha = createHash('sha1').update(script).digest('hex')));
    try {
      return await this.commands.evalSha(sha, { keys, arguments: args });
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.commands.eval(script, { keys, arguments: args });
    }
  }

  async borrowBlocking(): Promise<BlockingConnection> {
    if (this.closed) throw new LayerClosed();
    const reused = this.idle.pop();
    if (reused) return reused;
    const client = this.commands.duplicate();
    // Mandatory (an 'error' without a listener crashes the process); the command link reports health.
    client.on('error', noop);
    const connection = { client, buffers: bufferView(client) };
    this.blocking.add(connection);
    client.connect().catch(noop);
    return connection;
  }

  returnBlocking(connection: BlockingConnection): void {
    if (!this.closed && this.idle.length < IDLE_BLOCKING && connection.client.isOpen) {
      this.idle.push(connection);
      return;
    }
    this.blocking.delete(connection);
    if (connection.client.isOpen) connection.client.destroy();
  }

  /** Resolves once the connection is ready again (or the host closes): for retry loops. */
  whenReady({ client }: BlockingConnection): Promise<void> {
    if (client.isReady || this.closed || !client.isOpen) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        client.off('ready', done);
        client.off('end', done);
        resolve();
      };
      client.on('ready', done);
      client.on('end', done);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    // A pending BZPOPMIN would hold a graceful close for its whole timeout: end those at once.
    for (const { client } of this.blocking) if (client.isOpen) client.destroy();
    this.blocking.clear();
    this.idle.length = 0;
    await closeClient(this.commands);
  }
}
