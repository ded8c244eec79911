// One Redis host of a layer: a command connection, blocking connections, reconnects and health.
import { createHash } from 'node:crypto';
import { createClient, RESP_TYPES } from 'redis';
import { LayerClosed, type LayerLogger, LayerUnavailable } from '../layer';
import { reconnectDelay, redactUrl } from './link';

export type { LayerLogger } from '../layer';

function newClient(url: string, connectTimeout: number) {
  return createClient({
    url,
    // Commands fail at once while the link is down (LayerUnavailable), instead of piling up unseen.
    disableOfflineQueue: true,
    socket: {
      connectTimeout,
      // Exponential backoff with jitter, capped at 2 s, forever: losing Redis must never end the process.
      reconnectStrategy: reconnectDelay,
    },
  });
}

/** Replies as Buffers: members are binary (12 random bytes + msgpack). */
const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;
function bufferView(client: CommandClient) {
  return client.withTypeMapping(BUFFERS);
}

export type CommandClient = ReturnType<typeof newClient>;

/** A connection of its own for BZPOPMIN, which holds its connection while it waits. */
export interface BlockingConnection {
  client: CommandClient;
  /** The same connection, replying with Buffers. */
  buffers: ReturnType<typeof bufferView>;
}


/** How many idle blocking connections a host keeps for point-to-point `receive` calls. */
const IDLE_BLOCKING = 4;

/**
 * One Redis server of the list layer's host list (a "host"; `shard` is kept for Redis Cluster):
 * the command connection, a small pool of blocking connections for BZPOPMIN, and the link's health.
 */
export class ListHost {
  readonly commands: CommandClient;
  /** The command connection, replying with Buffers. */
  readonly commandBuffers: ReturnType<typeof bufferView>;
  private readonly blocking = new Set<BlockingConnection>();
  private readonly idle: BlockingConnection[] = [];
  private readonly scripts = new Map<string, string>();
  private everReady = false;
  private lastError: string | undefined;
  private closed = false;
  private readonly firstReady: Promise<void>;

  /** The URL without credentials, for logs and health. */
  readonly url: string;

  constructor(
    url: string,
    private readonly connectTimeout: number,
    private readonly logger: LayerLogger | undefined,
    /** Called on every 'ready' of the command connection, the first and each reconnect. */
    private readonly onReady: () => void = () => {},
  ) {
    this.url = redactUrl(url);
    this.commands = newClient(url, connectTimeout);
    this.commandBuffers = bufferView(this.commands);
    this.firstReady = new Promise((resolve) => this.commands.once('ready', resolve));
    this.watch(this.commands, true);
    this.commands.connect().catch(() => {}); // retries forever; failures arrive as 'error' events
  }

  get up(): boolean {
    return this.commands.isReady;
  }

  /** The last connection error, or 'connecting' before the first connection. */
  get problem(): string {
    return this.lastError ?? (this.everReady ? 'disconnected' : 'connecting');
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
    this.watch(client, false);
    const connection = { client, buffers: bufferView(client) };
    this.blocking.add(connection);
    client.connect().catch(() => {});
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
    if (this.commands.isReady) {
      await this.commands.close().catch(() => this.commands.destroy());
    } else if (this.commands.isOpen) {
      this.commands.destroy();
    }
  }

  private watch(client: CommandClient, main: boolean): void {
    // Every client needs an 'error' listener: without one, a lost connection throws and ends the process.
    client.on('error', (error: Error) => {
      if (!main) return;
      const first = this.lastError === undefined || this.commands.isReady;
      this.lastError = error.message;
      const what = this.everReady ? 'connection lost' : 'cannot reach Redis';
      if (first) this.logger?.warn({ err: error, url: this.url }, `redis channel layer: ${what}, reconnecting`);
    });
    if (!main) return;
    client.on('ready', () => {
      if (this.everReady) this.logger?.info({ url: this.url }, 'redis channel layer: reconnected');
      this.everReady = true;
      this.lastError = undefined;
      this.onReady();
    });
  }
}
