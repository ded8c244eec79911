// Redis Sentinel: a private local socket that always leads to the current master, so every link follows a failover by reconnecting.
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import type { LayerLogger } from '../layer';
import { noop, reconnectDelay, type RedisTarget } from './link';

/**
 * A master managed by Redis Sentinel, as channels_redis's host `{"sentinels": [...], "master_name": ...}`.
 *
 * Example: `{ sentinels: ['10.0.0.1:26379', '10.0.0.2:26379', '10.0.0.3:26379'], masterName: 'mymaster' }`.
 * TLS to the master or to the Sentinels is not supported yet (a layer's `tlsCa` does not apply here).
 */
export interface SentinelOptions {
  /** The Sentinels, 'host:port' each. Any one that answers is enough; list them all. Required. */
  sentinels: string[];
  /** The master's name in the Sentinels' configuration (`sentinel monitor <name> ...`). Required. */
  masterName: string;
  /** ACL user name on the master (and its replicas). Default none ('default' user). */
  username?: string;
  /** Password on the master (`requirepass`, or the ACL user's). Default none. */
  password?: string;
  /** Password of the Sentinels themselves (their `requirepass`), as channels_redis's `sentinel_kwargs`. Default none. */
  sentinelPassword?: string;
}

/** 'host:port' to its parts; throws naming `source` and the expected form. */
export function parseSentinelAddress(address: string, source = 'sentinels'): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !(port > 0 && port <= 65535)) {
    throw new Error(`${source}: "${address}" is not a Sentinel address; expected host:port, e.g. 10.0.0.1:26379`);
  }
  return { host: match[1], port };
}

/** A connection to one Sentinel: reconnects forever; commands fail at once while it is down unless `offlineQueue`. */
function sentinelClient(host: string, port: number, password: string | undefined, offlineQueue = false) {
  const client = createClient({ socket: { host, port, connectTimeout: 2000, reconnectStrategy: reconnectDelay }, password, disableOfflineQueue: !offlineQueue });
  client.on('error', noop);
  return client;
}
type SentinelClient = ReturnType<typeof sentinelClient>;

/** Milliseconds between checks that the Sentinels still name the master the links lead to. */
const CHECK_INTERVAL = 5000;
/** Milliseconds a connection waits for the first Sentinel connection, and for a Sentinel's answer. */
const SENTINEL_WAIT = 2000;

/** A Sentinel that hangs must not hold every new connection: its answer is given up after `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  promise.catch(noop);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms).unref()));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

interface Address {
  host: string;
  port: number;
}

/**
 * Why a local socket rather than node-redis's `createSentinel`: every link of the layers is a plain
 * node-redis client whose reconnects are already what a failover needs (LinkMonitor marks the link
 * down, so `/readyz` is 503; on 'ready' the pub/sub layer re-subscribes and the list layer restores
 * its memberships; the receive loops wait for their blocking connections). A client's address is
 * fixed when it is made, so the clients connect here instead, and each new connection is piped to the
 * master the Sentinels name at that moment. On `+switch-master` (or the earlier `+promoted-slave`) the pipes to the old master are cut:
 * the links reconnect, and reach the new one. `createSentinel` would have replaced that machinery with
 * its own (other events, a pooled client per command, commands that wait out a failover instead of
 * failing fast, and an initial connect that gives up).
 *
 * The socket is a Unix socket in a private (0700) directory, so no other user of the host can reach
 * Redis through it. The cost: every byte crosses this process once more. TLS through it is not built:
 * the client would have to check the certificate against the master's name, which changes.
 */
export class SentinelMaster {
  private readonly dir = mkdtempSync(join(tmpdir(), 'channelkit-sentinel-'));
  private readonly path = join(this.dir, 'master.sock');
  private readonly server: Server;
  private readonly sentinels: Array<{ address: string; commands: SentinelClient; events: SentinelClient }>;
  /** Open client<->master pipes, with the master each leads to. */
  private readonly pipes = new Map<Socket, { upstream: Socket; master: string }>();
  private master: Address | null = null;
  /** The master ('host:port') that last refused a connection, until one to it succeeds. */
  private refused: string | null = null;
  private problem: string | null = null;
  private readonly checker: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly options: SentinelOptions,
    private readonly logger?: LayerLogger,
  ) {
    if (!options.masterName) throw new Error('sentinel: `masterName` is empty; give the name the Sentinels monitor');
    if (options.sentinels.length === 0) throw new Error('sentinel: `sentinels` is empty; give at least one host:port');
    const addresses = options.sentinels.map((address) => parseSentinelAddress(address));
    this.sentinels = addresses.map(({ host, port }) => {
      const commands = sentinelClient(host, port, options.sentinelPassword);
      // Keeps its offline queue: it only holds the one SUBSCRIBE, sent once connected.
      const events = sentinelClient(host, port, options.sentinelPassword, true);
      commands.connect().catch(noop);
      // A switch we missed while this connection was down: look again when it is back.
      events.on('ready', () => void this.check());
      events.connect().catch(noop);
      events.subscribe(['+switch-master', '+promoted-slave'], (message, channel) => this.onEvent(channel, message)).catch(noop);
      return { address: `${host}:${port}`, commands, events };
    });
    this.checker = setInterval(() => void this.check(), CHECK_INTERVAL).unref();
    this.server = createServer((socket) => this.accept(socket));
    this.server.on('error', (error) => this.report(`local socket: ${error.message}`));
    // A path, not a port: bound at once, so links made right after the constructor can connect.
    this.server.listen({ path: this.path, exclusive: true });
  }

  /** What a link connects to: this socket, with the master's credentials. */
  get target(): RedisTarget {
    return { path: this.path, name: `sentinel master ${this.options.masterName}`, username: this.options.username, password: this.options.password };
  }

  /** The master the Sentinels last named, 'host:port' (for logs and tests); null before the first answer. */
  get current(): string | null {
    return this.master && `${this.master.host}:${this.master.port}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.checker);
    for (const [client, { upstream }] of this.pipes) {
      client.destroy();
      upstream.destroy();
    }
    this.pipes.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all(this.sentinels.flatMap(({ commands, events }) => [commands, events]).map((client) => (client.isReady ? client.close().catch(noop) : client.isOpen ? client.destroy() : undefined)));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Asks every connected Sentinel at once. During a failover they may disagree for a moment (the
   * others learn the new master from the leader): an answer other than the master that just refused
   * a connection wins. Falls back to the last known master when none answers.
   */
  private async resolve(): Promise<Address | null> {
    const { named, failures } = await this.ask();
    const chosen = named.find(({ host, port }) => `${host}:${port}` !== this.refused) ?? named[0];
    if (chosen) this.setMaster(chosen);
    else this.report(`no Sentinel named master ${this.options.masterName} (${failures.join('; ')})`);
    return this.master;
  }

  /** Every connected Sentinel's answer, in parallel. */
  private async ask(): Promise<{ named: Address[]; failures: string[] }> {
    // Right after start no Sentinel connection is ready yet: the first links would be refused for that alone.
    if (!this.sentinels.some(({ commands }) => commands.isReady)) await this.firstSentinel();
    const failures: string[] = [];
    const answers = await Promise.all(
      this.sentinels.map(async ({ address, commands }): Promise<Address | null> => {
        if (!commands.isReady) {
          failures.push(`${address}: not connected`);
          return null;
        }
        try {
          const asked = commands.sendCommand<string[] | null>(['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.options.masterName]);
          const reply = await withTimeout(asked, SENTINEL_WAIT, `no answer within ${SENTINEL_WAIT} ms`);
          if (reply && reply.length === 2) return { host: reply[0], port: Number(reply[1]) };
          failures.push(`${address}: does not know master ${this.options.masterName}`);
        } catch (error) {
          failures.push(`${address}: ${(error as Error).message}`);
        }
        return null;
      }),
    );
    return { named: answers.filter((answer): answer is Address => answer !== null), failures };
  }

  /** Resolves when a Sentinel connection is ready, or after `SENTINEL_WAIT` ms (or on close). */
  private firstSentinel(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        for (const { commands } of this.sentinels) commands.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, SENTINEL_WAIT).unref();
      for (const { commands } of this.sentinels) commands.on('ready', done);
    });
  }

  /**
   * A known master is used as it is while it accepts connections: asking the Sentinels on every
   * reconnect could take a lagging one's word over the `+switch-master` just received. Once it
   * refuses a connection, the Sentinels are asked again.
   */
  private accept(client: Socket): void {
    client.pause();
    client.on('error', noop);
    const known = this.master && this.refused !== this.current ? Promise.resolve(this.master) : this.resolve();
    void known.then((master) => {
      if (!master || this.closed || client.destroyed) {
        client.destroy();
        return;
      }
      const upstream = createConnection({ host: master.host, port: master.port, noDelay: true, keepAlive: true });
      const entry = { upstream, master: `${master.host}:${master.port}` };
      let connected = false;
      this.pipes.set(client, entry);
      const end = () => {
        this.pipes.delete(client);
        client.destroy();
        upstream.destroy();
      };
      upstream.on('error', (error) => {
        if (!connected) this.refused = entry.master;
        this.report(`master ${entry.master}: ${error.message}`);
        end();
      });
      upstream.on('close', end);
      client.on('close', end);
      upstream.once('connect', () => {
        connected = true;
        if (this.refused === entry.master) this.refused = null;
        this.report(null);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    });
  }

  /**
   * `+switch-master` "<name> <old-ip> <old-port> <new-ip> <new-port>" ends a failover. The leader's
   * `+promoted-slave` "slave <ip:port> <ip> <port> @ <name> <master-ip> <master-port>" comes earlier,
   * once the replica reports itself master: following it then shortens the time writes still go to
   * the old master, which may still accept them until it is demoted (and then loses them).
   */
  private onEvent(channel: string, message: string): void {
    const parts = message.split(' ');
    const [name, host, port] =
      channel === '+switch-master' ? [parts[0], parts[3], parts[4]] : parts[0] === 'slave' && parts[4] === '@' ? [parts[5], parts[2], parts[3]] : [];
    if (name !== this.options.masterName || !host || !port) return;
    this.setMaster({ host, port: Number(port) });
  }

  /**
   * After a reconnect to a Sentinel, and every `CHECK_INTERVAL`: a switch whose event was missed. Only
   * when every Sentinel that answers names the same other master, so a lagging one mid-failover
   * cannot move the links back to a demoted master (which would accept connections, then refuse writes).
   */
  private async check(): Promise<void> {
    if (this.closed) return;
    const { named } = await this.ask();
    const first = named[0];
    if (!first || this.closed) return;
    if (named.every(({ host, port }) => host === first.host && port === first.port)) this.setMaster(first);
  }

  /** A new master: the pipes to any other are cut, so their links reconnect (and reach the new one). */
  private setMaster(master: Address): void {
    const address = `${master.host}:${master.port}`;
    const before = this.current;
    this.master = master;
    if (before === address) return;
    // A refusal was about the old master; the new one gets its own chance.
    this.refused = null;
    if (before !== null) this.logger?.warn({ master: this.options.masterName, from: before, to: address }, 'sentinel: the master moved; reconnecting to the new one');
    for (const [client, entry] of this.pipes) {
      if (entry.master === address) continue;
      client.destroy();
      entry.upstream.destroy();
    }
  }

  /** Logs a problem once per change (not per reconnect attempt), and its end. */
  private report(problem: string | null): void {
    if (problem === this.problem || this.closed) return;
    const was = this.problem;
    this.problem = problem;
    if (problem) this.logger?.warn({ master: this.options.masterName }, `sentinel: ${problem}`);
    else if (was) this.logger?.info({ master: this.options.masterName, at: this.current }, 'sentinel: master reachable again');
  }
}
