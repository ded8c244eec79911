// History on the Redis layers and the publisher: the shared pattern table, recording, reading.
import { randomBytes } from 'node:crypto';
import { RESP_TYPES } from 'redis';
import { type Codec, SealedCodec } from '../codec';
import { type HistoryPolicy, POSITION_GRACE_SECONDS, checkHistoryPattern, validatePolicy } from '../history';
import { HistoryPolicies } from '../history-policies';
import { type LayerMessage, LayerUnavailable, validateMessage } from '../layer';
import { HistoryCaches, type HistorySnapshot } from './history-cache';
import { READ, RECORD, RecordEncoder, SET_POLICY, type Script, historyKeys, historyTable } from './history-script';

/**
 * Runs one command on the Redis that holds `route`'s keys: `route` is a group's Redis channel (its
 * history keys carry it as hash tag) or the table's name. `buffers` asks for bulk strings as Buffers.
 */
export type HistoryCommand = (route: string, args: Array<string | Buffer>, buffers?: boolean) => Promise<unknown>;

/** sendCommand options that return bulk strings as Buffers (message payloads are msgpack, not text). */
export const AS_BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };

/** Which publish the scripts use: PUBLISH (one host or several), SPUBLISH (Cluster). */
export type PublishCommand = 'PUBLISH' | 'SPUBLISH';

/** EVALSHA, and EVAL once when Redis does not know the script (a restart empties its script cache). */
export async function runScript(run: HistoryCommand, route: string, script: Script, keys: string[], args: Array<string | Buffer>, buffers = false): Promise<unknown> {
  try {
    return await run(route, ['EVALSHA', script.sha, String(keys.length), ...keys, ...args], buffers);
  } catch (error) {
    if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
    return run(route, ['EVAL', script.source, String(keys.length), ...keys, ...args], buffers);
  }
}

/**
 * The `setHistory` table, kept in Redis (`<prefix>__history`) so every sender finds it: each layer
 * and publisher loads it when it connects and again whenever a change is announced on the channel
 * of the same name (or after a reconnect). Until it has loaded once, group sends wait for it.
 */
export class HistoryTable {
  readonly policies = new HistoryPolicies();
  readonly name: string;
  private loading: Promise<void> | null = null;
  /** A change was announced while a load was on its way: that load may predate it, read again. */
  private again = false;
  /** True once a load succeeded. */
  loaded = false;
  /** Patterns this process set, written again after a reconnect: a restarted Redis comes back without its table. */
  private readonly own = new Map<string, HistoryPolicy | null>();

  constructor(
    prefix: string,
    private readonly run: HistoryCommand,
    private readonly publish: () => PublishCommand,
  ) {
    this.name = historyTable(prefix);
  }

  /** Loads the table now (coalescing concurrent calls); rejects when Redis cannot be read. */
  load(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    const loading = (async () => {
      do {
        this.again = false;
        await this.read();
      } while (this.again);
    })();
    this.loading = loading.finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  /** Set or (null) remove a pattern, in Redis for everyone, announced, and here at once. */
  async set(pattern: string, policy: HistoryPolicy | null): Promise<void> {
    checkHistoryPattern(pattern);
    // '#' is a field of the pattern table itself.
    if (pattern === '#') throw new RangeError(`setHistory: invalid pattern ${JSON.stringify(pattern)}`);
    if (policy) validatePolicy(policy);
    await runScript(this.run, this.name, SET_POLICY, [this.name], [pattern, policy ? `${policy.size} ${policy.ttl}` : '', this.name, this.publish()]);
    this.policies.set(pattern, policy);
    this.own.set(pattern, policy);
  }

  /** Writes this process's own patterns again (in their order), then reloads the table. */
  async reassert(): Promise<void> {
    for (const [pattern, policy] of this.own) {
      await runScript(this.run, this.name, SET_POLICY, [this.name], [pattern, policy ? `${policy.size} ${policy.ttl}` : '', this.name, this.publish()]);
    }
    await this.load();
  }

  private async read(): Promise<void> {
    const reply = (await this.run(this.name, ['HGETALL', this.name])) as Record<string, string> | string[];
    const pairs: Array<[string, string]> = Array.isArray(reply)
      ? Array.from({ length: reply.length / 2 }, (_, i) => [reply[2 * i], reply[2 * i + 1]])
      : Object.entries(reply);
    const entries: Array<[number, string, HistoryPolicy]> = [];
    for (const [pattern, value] of pairs) {
      const parts = /^(\d+) (\d+) (\d+)$/.exec(value);
      if (pattern === '#' || !parts) continue;
      entries.push([Number(parts[1]), pattern, { size: Number(parts[2]), ttl: Number(parts[3]) }]);
    }
    entries.sort((a, b) => a[0] - b[0]);
    this.policies.replace(entries.map(([, pattern, policy]) => [pattern, policy] as const));
    this.loaded = true;
  }
}

/**
 * Records group messages: one EVALSHA per group send (XADD, trims, EXPIREs, PUBLISH in one atomic
 * step; see RECORD_SCRIPT). The message is encoded once, here; the epoch and offset are appended by
 * the script.
 */
export class HistoryRecorder {
  private readonly encoder: RecordEncoder;
  /** Part of every new epoch this process creates, with Redis's clock: two losses never share an epoch. */
  readonly token = randomBytes(4).toString('hex');

  /** `codec`: the layer's; with encryption keys the message is sealed and only epoch and offset stay clear. */
  constructor(
    private readonly prefix: string,
    private readonly run: HistoryCommand,
    private readonly publish: () => PublishCommand,
    private readonly codec: Codec,
  ) {
    this.encoder = new RecordEncoder(codec instanceof SealedCodec ? codec : null);
  }

  /** Encodes `message` (throws InvalidMessage); separate from `send` so a bad message fails before any I/O. */
  head(message: LayerMessage): Buffer {
    return this.encoder.head(message);
  }

  /** Records and publishes; resolves with the message's offset and PUBLISH's receiver count. */
  async send(groupChannel: string, head: Buffer, policy: HistoryPolicy): Promise<{ offset: number; receivers: number }> {
    const reply = (await runScript(this.run, groupChannel, RECORD, historyKeys(this.prefix, groupChannel), [
      head,
      groupChannel,
      String(policy.size),
      String(policy.ttl),
      String(policy.ttl + POSITION_GRACE_SECONDS),
      this.token,
      this.publish(),
    ])) as [number, number];
    return { offset: Number(reply[0]), receivers: Number(reply[1]) };
  }

  /** One consistent read of a group's kept messages (see READ_SCRIPT), decoded once. */
  async read(groupChannel: string, policy: HistoryPolicy): Promise<HistorySnapshot> {
    const reply = (await runScript(
      this.run,
      groupChannel,
      READ,
      historyKeys(this.prefix, groupChannel),
      [String(policy.ttl), String(policy.ttl + POSITION_GRACE_SECONDS), this.token],
      true,
    )) as Array<Buffer | number>;
    const entries: HistorySnapshot['entries'] = [];
    for (let i = 2; i < reply.length; i += 2) {
      // The layer's codec: it opens sealed records (encryption keys) as it does live ones.
      const message = this.codec.decode(reply[i + 1] as Buffer);
      entries.push({ at: Number(String(reply[i]).split('-')[0]), message });
    }
    return { epoch: String(reply[0]), offset: Number(reply[1]), entries };
  }
}

/** What a Redis pub/sub layer gives its history: commands, its publish, a subscriber barrier, subscriptions. */
export interface HistoryLink {
  command: HistoryCommand;
  publish(): PublishCommand;
  /** See HistoryCaches: resolves once what Redis published to the subscription of `groupChannel` has arrived. */
  barrier(groupChannel: string): Promise<void>;
  /** SUBSCRIBE (SSUBSCRIBE in Cluster) that does not wait for a link that is down. */
  subscribe(channel: string, listener: (message: Buffer, channel: Buffer) => void): Promise<void>;
  closed(): boolean;
}

/**
 * Everything a Redis pub/sub layer keeps for history: the table (watched: loaded once the links are
 * up, reloaded on each announcement, written again after a reconnect), the recorder and the
 * per-group caches.
 */
export class RedisHistory {
  readonly table: HistoryTable;
  readonly recorder: HistoryRecorder;
  readonly caches: HistoryCaches;
  private watched: Promise<void> | null = null;
  private readonly onChange = (): void => void this.table.load().catch(noop);

  constructor(
    prefix: string,
    private readonly link: HistoryLink,
    codec: Codec,
  ) {
    this.table = new HistoryTable(prefix, link.command, link.publish);
    this.recorder = new HistoryRecorder(prefix, link.command, link.publish, codec);
    this.caches = new HistoryCaches((group) => {
      const policy = this.table.policies.policyFor(group);
      if (!policy) return Promise.reject(new LayerUnavailable(`group ${group} no longer keeps history`));
      return this.recorder.read(`${prefix}__group__${group}`, policy);
    }, (group) => link.barrier(`${prefix}__group__${group}`));
  }

  /** Subscribes to the table's announcements (once), then loads it; rejects when Redis cannot be read. */
  async loadTable(): Promise<void> {
    this.watched ??= this.link.subscribe(this.table.name, this.onChange).catch(noop);
    await this.watched;
    await this.table.load();
  }

  /** After a reconnect: messages may have been missed, and a restarted Redis has lost the table. */
  reconnected(): void {
    this.caches.invalidateAll();
    if (!this.watched) return;
    this.watched = this.link.subscribe(this.table.name, this.onChange).catch(noop);
    void this.reassertTable();
  }

  /** Retried a while: the subscriber's 'ready' that triggers it may come before the command link's. */
  private async reassertTable(): Promise<void> {
    await this.watched;
    for (let attempt = 0; attempt < 40 && !this.link.closed(); attempt++) {
      try {
        await this.table.reassert();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 250).unref());
      }
    }
  }
}

const noop = (): void => {};
