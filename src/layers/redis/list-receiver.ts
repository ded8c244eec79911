// The list layer's receive side: the loops that drain this process's keys, and receive() of shared channels.
import type { Sealer } from '../fernet';
import { LayerClosed, type LayerLogger, type LayerMessage } from '../layer';
import type { LocalChannels } from '../local';
import { consistentHash } from './consistent-hash';
import type { FullChannelSkips } from './link';
import { RefusedMessages } from './refused';
import type { BlockingConnection, ListHost } from './list-host';
import { channelKey, type Envelope, EnvelopeReader } from './wire';

/** What the receive side takes from the layer's options (see RedisChannelLayerOptions). */
export interface ListReceiverSettings {
  prefix: string;
  /** Seconds a message lives: older ones popped from Redis are dropped unseen. */
  expiry: number;
  /** Seconds one BZPOPMIN blocks. */
  blockTimeout: number;
  /** Milliseconds `start` waits for the loops' connections. */
  connectTimeout: number;
  logger: LayerLogger | undefined;
  /** Opens members sealed with `symmetricEncryptionKeys`; undefined reads plain msgpack. */
  sealer?: Sealer;
}

/**
 * Moves messages from Redis into LocalChannels. A process's channels (`specific.<client>!<id>`)
 * share one key per host, drained by one loop per host that demultiplexes the envelopes to their
 * local channels; a shared channel (a worker's, no '!') is popped by whichever `receive()` asks.
 */
export class ListReceiver {
  private readonly reader: EnvelopeReader;
  /** Members dropped because they were not channels_redis messages or no key opened them. */
  readonly refused: RefusedMessages;
  /** Non-local names ("specific.<client>!") whose receive loops run. */
  private readonly pumps = new Map<string, Promise<void>>();
  private readonly pauses = new Set<() => void>();
  private closed = false;

  constructor(
    private readonly hosts: ListHost[],
    private readonly settings: ListReceiverSettings,
    private readonly local: LocalChannels,
    private readonly skips: FullChannelSkips,
  ) {
    // channels_redis: `decrypt(message, self.expiry + 10)`.
    this.reader = new EnvelopeReader(settings.sealer, settings.expiry + 10);
    this.refused = new RefusedMessages('redis', settings.logger);
  }

  /**
   * Starts, once per non-local name, the loops that drain this process's key on every host.
   * Resolves when they are connected (or after `connectTimeout`: Redis may be down, the loops wait).
   */
  start(nonLocal: string): Promise<void> {
    let started = this.pumps.get(nonLocal);
    if (started) return started;
    const key = channelKey(this.settings.prefix, nonLocal);
    // Every host, not only the hashed one: channels_redis 4.0's send() hashes the full channel
    // name, so a Django process with several hosts may queue our channels' messages on any host.
    const connected = this.hosts.map(
      (host) =>
        new Promise<void>((resolve) => {
          this.pump(host, key, resolve).catch((error: unknown) => {
            resolve();
            if (!this.closed) this.settings.logger?.warn({ err: error, key }, 'redis channel layer: receive loop stopped');
          });
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.settings.connectTimeout).unref()));
    started = Promise.race([Promise.all(connected), timedOut]).then(() => clearTimeout(timer));
    this.pumps.set(nonLocal, started);
    return started;
  }

  /** A non-process-local channel (a worker's): any process may take its next message. */
  async receiveShared(channel: string): Promise<LayerMessage> {
    const key = channelKey(this.settings.prefix, channel);
    const home = this.hosts[consistentHash(channel, this.hosts.length)];
    // Django round-robins such sends over its hosts; ours go to the channel's home host.
    const others = this.hosts.filter((host) => host !== home);
    const block = others.length > 0 ? Math.min(this.settings.blockTimeout, 1) : this.settings.blockTimeout;
    const connection = await home.borrowBlocking();
    try {
      for (;;) {
        for (const host of others) {
          if (!host.up) continue;
          const popped = await host.commandBuffers.zPopMin(key).catch(() => null);
          if (popped) {
            const message = this.open(popped.value as Buffer, Number(popped.score))?.message;
            if (message) return message;
          }
        }
        const popped = await this.popBlocking(home, connection, key, block);
        if (popped) {
          const message = this.open(popped.value, popped.score)?.message;
          if (message) return message;
        }
      }
    } finally {
      home.returnBlocking(connection);
    }
  }

  /** A full local channel skips a message from another process, as a full member of a group send. */
  deliver(channel: string, message: LayerMessage): void {
    if (!this.local.deliver(channel, message)) this.skips.skipped(channel);
  }

  /** Ends the loops: pending pops throw LayerClosed once their connections are destroyed. */
  close(): void {
    this.closed = true;
    for (const wake of this.pauses) wake();
  }

  private async pump(host: ListHost, key: string, connected: () => void): Promise<void> {
    const connection = await host.borrowBlocking();
    await host.whenReady(connection);
    // The command link too: a layer whose newChannel() returned is up for sends as well.
    await host.ready().catch(() => undefined);
    connected();
    while (!this.closed) {
      const popped = await this.popBlocking(host, connection, key, this.settings.blockTimeout).catch(() => null);
      if (popped) this.dispatch(popped.value, popped.score);
    }
  }

  /** Hands one member of a process key to its local channel(s); decoded once for all of them. */
  private dispatch(member: Buffer, score: number): void {
    const envelope = this.open(member, score);
    if (!envelope) return;
    const { message, channels } = envelope;
    if (typeof channels === 'string') this.deliver(channels, message);
    else if (channels) for (const channel of channels) this.deliver(channel, message);
  }

  /** Decodes a popped member; null when it expired or is not a channels_redis message (logged). */
  private open(member: Buffer, score: number): Envelope | null {
    // channels_redis leaves expiry on receive as a TODO; a late reader must not see stale messages.
    if (score < Date.now() / 1000 - this.settings.expiry) return null;
    try {
      return this.reader.read(member);
    } catch (error) {
      this.refused.refused('a queued message', error);
      return null;
    }
  }

  /** One BZPOPMIN; null on timeout. Waits out a lost connection; throws LayerClosed on close. */
  private async popBlocking(host: ListHost, connection: BlockingConnection, key: string, timeout: number) {
    for (;;) {
      if (this.closed) throw new LayerClosed();
      try {
        const popped = await connection.buffers.bzPopMin(key, timeout);
        return popped ? { value: popped.value as Buffer, score: Number(popped.score) } : null;
      } catch {
        if (this.closed) throw new LayerClosed();
        await host.whenReady(connection);
        await this.pause(50);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.pauses.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.pauses.add(wake);
    });
  }
}
