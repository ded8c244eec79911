// Presence on the Redis pub/sub layers: members in a hash per group, changes on a presence channel, a heartbeat per process.
import { createHash } from 'node:crypto';
import type { Codec } from '../codec';
import { LayerUnavailable, type LayerLogger } from '../layer';
import { type DiffDelivery, PresenceBatcher } from '../presence-batcher';
import { type PresenceMember, presenceMember } from '../presence';
import { noop } from './link';
import type { RawListener } from './pubsub-base';

/**
 * Redis layout of group G (prefix P), every name tagged `{G}` so that on Redis Cluster they share
 * one slot (and a script may touch them all):
 * - `P__presence__{G}`         HASH  member id -> encoded member ({id, name}, through the layer's codec)
 * - `P__presence__{G}:procs`   ZSET  process id -> deadline (ms, Redis clock): the process is dead after it
 * - `P__presence__{G}:index`   ZSET  `<process id>:<member id>`, all scores 0: whose members are whose
 * - `P__presence_events__{G}`  the (sharded) pub/sub channel of changes, apart from the group's
 *   message channel so that Django subscribers never see presence traffic. A change is 'j' (joins)
 *   or 'l' (leaves), then each encoded member as a 4-byte big-endian length and its bytes.
 *
 * Commands: a join is one EVALSHA (TIME, HSET, ZADD index, ZADD procs, 3 PEXPIRE, PUBLISH, and HVALS
 * for the snapshot); a leave one EVALSHA (ZREM, HGET, HDEL, PUBLISH); a heartbeat one EVALSHA per
 * group with local members (TIME, ZADD procs, 3 PEXPIRE, ZRANGEBYSCORE for dead processes, and for at most one
 * dead process at most `SWEEP_LIMIT` of its members: ZRANGEBYLEX, HMGET, HDEL, ZREM, PUBLISH).
 * Every key expires 2 timeouts after the last heartbeat, so a group whose processes all died
 * disappears without a sweeper.
 */

/** How the layer's transport runs presence commands; each pub/sub layer provides one. */
export interface PresenceLink {
  /** 'PUBLISH', or 'SPUBLISH' on Redis Cluster. */
  readonly publishCommand: 'PUBLISH' | 'SPUBLISH';
  /** Whether a command for `key`'s node can be sent now. */
  ready(key: string): boolean;
  /** EVALSHA (EVAL on NOSCRIPT) on the node that holds `keys`; bulk replies as Buffers. */
  run(script: PresenceScript, keys: string[], args: Array<string | Buffer>): Promise<unknown>;
  /** One read-only command on the node that holds `key`. */
  command(key: string, args: string[]): Promise<unknown>;
  /** (S)SUBSCRIBE `channel` on the node that holds `key`; settles at once while that node is down. */
  subscribe(key: string, channel: string, listener: RawListener): Promise<void>;
  unsubscribe(key: string, channel: string, listener: RawListener): Promise<void>;
}

export interface PresenceScript {
  source: string;
  sha: string;
}

function script(source: string): PresenceScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Lua: Redis's clock in ms, so deadlines from every process agree. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS hash, procs, index; ARGV id, value, process, timeout ms, channel, publish command, '1' to return the snapshot. */
const JOIN = script(`${NOW}
local timeout = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[3] .. ':' .. ARGV[1])
redis.call('ZADD', KEYS[2], now + timeout, ARGV[3])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], timeout * 2) end
redis.call(ARGV[6], ARGV[5], 'j' .. struct.pack('>I4', #ARGV[2]) .. ARGV[2])
if ARGV[7] == '1' then return redis.call('HVALS', KEYS[1]) end
return 0`);

/** KEYS hash, procs, index; ARGV id, process, channel, publish command. */
const LEAVE = script(`redis.call('ZREM', KEYS[3], ARGV[2] .. ':' .. ARGV[1])
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call(ARGV[4], ARGV[3], 'l' .. struct.pack('>I4', #value) .. value)
return 1`);

/**
 * KEYS hash, procs, index; ARGV process, timeout ms, channel, publish command, sweep limit.
 * Returns {1 if this process was missing (Redis lost it, or swept it), members swept}.
 */
const HEARTBEAT = script(`${NOW}
local timeout = tonumber(ARGV[2])
local limit = tonumber(ARGV[5])
local missing = redis.call('ZADD', KEYS[2], now + timeout, ARGV[1])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], timeout * 2) end
local swept = 0
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)
for _, process in ipairs(dead) do
  local entries = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. process .. ':', '(' .. process .. ';', 'LIMIT', 0, limit)
  if #entries < limit then redis.call('ZREM', KEYS[2], process) end
  if #entries > 0 then
    local ids = {}
    for i, entry in ipairs(entries) do ids[i] = string.sub(entry, #process + 2) end
    local values = redis.call('HMGET', KEYS[1], unpack(ids))
    local gone = {}
    for i, value in ipairs(values) do
      if value then gone[#gone + 1] = struct.pack('>I4', #value) .. value end
    end
    redis.call('HDEL', KEYS[1], unpack(ids))
    redis.call('ZREM', KEYS[3], unpack(entries))
    if #gone > 0 then redis.call(ARGV[4], ARGV[3], 'l' .. table.concat(gone)) end
    swept = swept + #gone
  end
end
return {missing, swept}`);

export interface RedisPresenceOptions {
  /** Milliseconds over which changes are merged into one diff (LayerOptions.presenceInterval). */
  interval: number;
  /** Milliseconds between heartbeats. */
  heartbeat: number;
  /** Milliseconds after its last heartbeat that a process's members are swept. */
  timeout: number;
}

/** Members of one dead process removed per group per heartbeat: the sweep's cost bound. */
export const SWEEP_LIMIT = 500;

/**
 * Presence for one pub/sub layer instance (one process). Local members and diffs are the
 * PresenceBatcher's; this class keeps Redis in step: one subscription to a group's presence
 * channel per process while it has members there, a heartbeat per group that also sweeps dead
 * processes, and re-adds this process's members wherever Redis lost them (a restart, a failover).
 */
export class RedisPresence {
  private readonly batcher: PresenceBatcher;
  /**
   * group -> its presence channel's SUBSCRIBE (settled once live, or at once while Redis is down);
   * dropped by the first heartbeat that finds the group without local members.
   */
  private readonly subscriptions = new Map<string, Promise<void>>();
  /** group -> its presence channel's UNSUBSCRIBE while on its way (a new subscription waits for it). */
  private readonly unsubscribing = new Map<string, Promise<void>>();
  /** group -> member ids whose leave did not reach Redis: retried each heartbeat. */
  private readonly pendingLeaves = new Map<string, Set<string>>();
  /** Groups whose members local members must be told again (after a reconnect): done by their next heartbeat. */
  private readonly resync = new Set<string>();
  /**
   * group -> when (ms) its members are read once more after a resync, and those shown here but still
   * missing from Redis leave: every live process has had `timeout` to write its members back.
   */
  private readonly settleAt = new Map<string, number>();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  private readonly eventsPrefix: string;
  private readonly keyPrefix: string;
  private closed = false;

  private readonly onEvent: RawListener = (bytes, channel) => this.receive(channel.toString('latin1'), bytes);

  constructor(
    private readonly link: PresenceLink,
    private readonly codec: Codec,
    prefix: string,
    private readonly processId: string,
    private readonly options: RedisPresenceOptions,
    deliver: DiffDelivery,
    private readonly logger: LayerLogger | undefined,
  ) {
    this.batcher = new PresenceBatcher(options.interval, deliver, true);
    this.keyPrefix = `${prefix}__presence__{`;
    this.eventsPrefix = `${prefix}__presence_events__{`;
  }

  get skipped(): number {
    return this.batcher.skipped;
  }

  /** This process's members over every group. */
  get localMembers(): number {
    return this.batcher.members;
  }

  async join(group: string, channel: string, given: PresenceMember): Promise<PresenceMember[]> {
    const member = presenceMember(given);
    const keys = this.keys(group);
    if (!this.link.ready(keys[0])) throw new LayerUnavailable('Redis is down; presence join not recorded');
    const previous = this.batcher.watch(group, channel, member);
    this.batcher.beginSnapshot(group, member.id);
    try {
      if (previous && previous.id !== member.id) await this.removeFromRedis(group, previous.id);
      let subscribed = this.subscriptions.get(group);
      if (!subscribed) {
        // After the UNSUBSCRIBE of the group's last member, if one is on its way: node-redis would
        // take the channel for still subscribed, and that UNSUBSCRIBE's reply would then drop it.
        const unsubscribing = this.unsubscribing.get(group) ?? Promise.resolve();
        subscribed = unsubscribing.then(() => this.link.subscribe(keys[0], this.events(group), this.onEvent)).catch(noop);
        this.subscriptions.set(group, subscribed);
      }
      // Subscribed before the join is written: every later change arrives as a diff, every earlier one is in the snapshot.
      await subscribed;
      const values = (await this.link.run(JOIN, keys, [
        member.id, Buffer.from(this.codec.encode(member as unknown as Record<string, unknown>)), this.processId,
        String(this.options.timeout), this.events(group), this.link.publishCommand, '1',
      ])) as Buffer[];
      this.startHeartbeat();
      // Left (or replaced) while the join was on its way: its leave may have reached Redis first.
      if (this.batcher.membersOf(group).get(channel) !== member) await this.removeFromRedis(group, member.id);
      const snapshot = this.decodeAll(values);
      this.batcher.showed(group, snapshot);
      return snapshot;
    } catch (error) {
      if (this.batcher.membersOf(group).get(channel) === member) await this.leave(group, channel).catch(noop);
      throw error instanceof LayerUnavailable ? error : new LayerUnavailable((error as Error).message);
    } finally {
      this.batcher.endSnapshot(group, member.id);
    }
  }

  async leave(group: string, channel: string): Promise<void> {
    const member = this.batcher.unwatch(group, channel);
    if (!member) return;
    // The subscription outlives the group's last local member until the next heartbeat: a member
    // who comes back (a reconnect) finds it live, and no UNSUBSCRIBE races a new SUBSCRIBE.
    await this.removeFromRedis(group, member.id);
  }

  async list(group: string): Promise<PresenceMember[]> {
    const key = this.keys(group)[0];
    if (!this.link.ready(key)) throw new LayerUnavailable('Redis is down');
    return this.decodeAll((await this.link.command(key, ['HVALS', key])) as Buffer[]);
  }

  async count(group: string): Promise<number> {
    const key = this.keys(group)[0];
    if (!this.link.ready(key)) throw new LayerUnavailable('Redis is down');
    return Number(await this.link.command(key, ['HLEN', key]));
  }

  /**
   * After a reconnect: subscribe again, and heartbeat at once; a heartbeat that finds this
   * process missing from a group (Redis came back empty) re-adds its members there. Changes
   * published while this process was not subscribed are lost to it, so the next heartbeat of each
   * group also reads the members once subscribed again and hands the missed joins to local members.
   * Missed leaves (a member that left during the outage, a process that died while Redis was away)
   * wait one `timeout`: a Redis that came back empty lacks the members of live processes too until
   * each has written its own back. Then the heartbeat reads the members again, and whoever local
   * members were shown and is still missing leaves, as a process missing its deadline would.
   */
  reassert(): void {
    if (this.closed) return;
    for (const group of this.subscriptions.keys()) {
      this.subscriptions.set(group, this.link.subscribe(this.keys(group)[0], this.events(group), this.onEvent).catch(noop));
      this.resync.add(group);
    }
    void this.heartbeat();
  }

  /** Removes every member of this process (flush, close). */
  async leaveAll(): Promise<void> {
    const leaving: Array<Promise<void>> = [];
    for (const group of [...this.batcher.watchedGroups()]) {
      for (const channel of [...this.batcher.membersOf(group).keys()]) leaving.push(this.leave(group, channel).catch(noop));
    }
    await Promise.all(leaving);
  }

  async close(): Promise<void> {
    await this.leaveAll();
    this.closed = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    await this.beating;
    this.batcher.clear();
  }

  /** One heartbeat: every group with members here, plus leaves still owed to Redis. */
  heartbeat(): Promise<void> {
    this.beating ??= this.beat().finally(() => (this.beating = null));
    return this.beating;
  }

  private async beat(): Promise<void> {
    for (const group of [...this.subscriptions.keys()]) if (this.batcher.membersOf(group).size === 0) this.dropSubscription(group);
    const groups = new Set([...this.batcher.watchedGroups(), ...this.pendingLeaves.keys()]);
    await Promise.all([...groups].map((group) => this.beatGroup(group)));
  }

  private async beatGroup(group: string): Promise<void> {
    const keys = this.keys(group);
    if (this.closed || !this.link.ready(keys[0])) return;
    try {
      const pending = this.pendingLeaves.get(group);
      if (pending) {
        this.pendingLeaves.delete(group);
        await Promise.all([...pending].map((id) => this.removeFromRedis(group, id)));
      }
      if (this.batcher.membersOf(group).size === 0) return;
      const [missing] = (await this.link.run(HEARTBEAT, keys, [
        this.processId, String(this.options.timeout), this.events(group), this.link.publishCommand, String(SWEEP_LIMIT),
      ])) as [number, number];
      if (missing === 1) await this.readd(group);
      if (this.resync.delete(group)) {
        await this.subscriptions.get(group);
        try {
          this.batcher.reconcile(group, await this.list(group), false);
        } catch (error) {
          this.resync.add(group);
          throw error;
        }
        this.settleAt.set(group, Date.now() + this.options.timeout);
      } else if ((this.settleAt.get(group) ?? Infinity) <= Date.now()) {
        this.batcher.reconcile(group, await this.list(group), true);
        this.settleAt.delete(group);
      }
    } catch (error) {
      this.logger?.warn({ group, error: (error as Error).message }, 'presence heartbeat failed; retried at the next one');
    }
  }

  /** Redis lost this process's members of `group` (or swept them): write them again, as joins. */
  private async readd(group: string): Promise<void> {
    const keys = this.keys(group);
    await Promise.all(
      [...this.batcher.membersOf(group).values()].map((member) =>
        this.link.run(JOIN, keys, [
          member.id, Buffer.from(this.codec.encode(member as unknown as Record<string, unknown>)), this.processId,
          String(this.options.timeout), this.events(group), this.link.publishCommand, '0',
        ]),
      ),
    );
  }

  private async removeFromRedis(group: string, id: string): Promise<void> {
    const keys = this.keys(group);
    try {
      if (!this.link.ready(keys[0])) throw new LayerUnavailable('Redis is down');
      await this.link.run(LEAVE, keys, [id, this.processId, this.events(group), this.link.publishCommand]);
    } catch {
      // Owed to Redis: the heartbeat retries it (meanwhile this process's heartbeat keeps the entry alive).
      let pending = this.pendingLeaves.get(group);
      if (!pending) this.pendingLeaves.set(group, (pending = new Set()));
      pending.add(id);
      this.startHeartbeat();
    }
  }

  private dropSubscription(group: string): void {
    if (!this.subscriptions.delete(group) || this.closed) return;
    this.resync.delete(group);
    this.settleAt.delete(group);
    const unsubscribed = this.link.unsubscribe(this.keys(group)[0], this.events(group), this.onEvent).catch(noop);
    this.unsubscribing.set(group, unsubscribed);
    void unsubscribed.then(() => {
      if (this.unsubscribing.get(group) === unsubscribed) this.unsubscribing.delete(group);
    });
  }

  private startHeartbeat(): void {
    if (this.heartbeatTimer || this.closed) return;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.options.heartbeat);
    this.heartbeatTimer.unref();
  }

  private receive(channel: string, bytes: Buffer): void {
    const group = channel.slice(this.eventsPrefix.length, -1);
    const kind = bytes[0];
    let at = 1;
    while (at + 4 <= bytes.length) {
      const length = bytes.readUInt32BE(at);
      const member = this.decode(bytes.subarray(at + 4, at + 4 + length));
      at += 4 + length;
      if (!member) continue;
      if (kind === 0x6a /* j */) this.batcher.joined(group, member);
      else this.batcher.left(group, member);
    }
  }

  private decodeAll(values: Buffer[]): PresenceMember[] {
    const members: PresenceMember[] = [];
    for (const value of values) {
      const member = this.decode(value);
      if (member) members.push(member);
    }
    return members;
  }

  private decode(bytes: Uint8Array): PresenceMember | null {
    try {
      return presenceMember(this.codec.decode(bytes));
    } catch {
      return null;
    }
  }

  /** hash, procs, index: one slot (`{group}`). */
  private keys(group: string): string[] {
    const hash = `${this.keyPrefix}${group}}`;
    return [hash, `${hash}:procs`, `${hash}:index`];
  }

  private events(group: string): string {
    return `${this.eventsPrefix}${group}}`;
  }
}
