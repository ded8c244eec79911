// The histories one process keeps for every group (the in-memory layer; the workers' primary): stamped, replayed, swept.
import { v4 as uuid4 } from 'uuid';
import { EPOCH_KEY, type HistoryPolicy, type JoinFrom, type JoinResult, OFFSET_KEY } from './history';
import { HistoryBuffer } from './history-buffer';
import { HistoryPolicies } from './history-policies';
import type { LayerMessage } from './layer';

/** How often expired history is let go of: a minute, so memory follows the ttl within a minute. */
const SWEEP_MS = 60_000;

/**
 * Each group's buffer has an epoch of its own, made when the group is first recorded or joined (again
 * after `clear()`, or after a day idle, when the sweep drops it): a `since` from before never matches
 * offsets counted again from 1. A timer (unref'd, only while some group is kept) lets go of messages
 * past their ttl even if nobody joins, as Redis expires a stream and, a day later, its position.
 *
 * ```ts
 * const store = new HistoryStore();
 * store.policies.set('chat_*', { size: 100, ttl: 3600 });
 * const policy = store.policies.policyFor('chat_lobby');
 * if (policy) deliver(store.record('chat_lobby', message, policy)); // message now has epoch and offset
 * ```
 */
export class HistoryStore {
  readonly policies = new HistoryPolicies();
  private readonly histories = new Map<string, HistoryBuffer>();
  private sweeper: NodeJS.Timeout | null = null;

  /** Stamps `message` with the group's epoch and next offset (a sender's own are replaced) and keeps it. */
  record(group: string, message: LayerMessage, policy: HistoryPolicy): LayerMessage {
    const history = this.historyOf(group, policy);
    const offset = history.last + 1;
    // Reserved keys: a sender's own `epoch`/`offset` are replaced, and `offset` stays the last key.
    delete message[EPOCH_KEY];
    delete message[OFFSET_KEY];
    message[EPOCH_KEY] = history.epoch;
    message[OFFSET_KEY] = offset;
    history.append(offset, message, Date.now());
    return message;
  }

  /** What a join from `from` gets now; the caller adds the member in the same tick. */
  join(group: string, from: JoinFrom, policy: HistoryPolicy): JoinResult {
    return this.historyOf(group, policy).join(from);
  }

  /** Forgets every group (a flush): each starts a new epoch. */
  clear(): void {
    this.histories.clear();
  }

  close(): void {
    this.histories.clear();
    this.stopSweeping();
  }

  /** What is kept now: groups with a position, and messages (the ttl's last minute may still count). */
  get footprint(): { groups: number; messages: number } {
    let messages = 0;
    for (const history of this.histories.values()) messages += history.size;
    return { groups: this.histories.size, messages };
  }

  private historyOf(group: string, policy: HistoryPolicy): HistoryBuffer {
    let history = this.histories.get(group);
    if (!history) {
      this.histories.set(group, (history = new HistoryBuffer(newEpoch(), 0, policy)));
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    }
    history.policy = policy;
    return history;
  }

  private sweep(now = Date.now()): void {
    for (const [group, history] of this.histories) if (history.sweep(now)) this.histories.delete(group);
    if (this.histories.size === 0) this.stopSweeping();
  }

  private stopSweeping(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

function newEpoch(): string {
  return uuid4().replace(/-/g, '').slice(0, 16);
}
