// History and recovery: what a group keeps, where a member stands in it, and what a join replays.
import { ChannelLayerError, type LayerMessage } from './layer';

/**
 * How much of a group's stream is kept: the last `size` messages, each for at most `ttl` seconds.
 * Set per name pattern with `ChannelLayer.setHistory`; in such a group every delivered message
 * carries `offset` and `epoch` (reserved keys there: a sender's own are replaced).
 */
export interface HistoryPolicy {
  /** Messages kept per group (the oldest are trimmed), a positive integer. */
  size: number;
  /** Seconds a recorded message is kept, a positive integer (Redis expiries are whole seconds). */
  ttl: number;
}

/**
 * A point in a group's stream. `offset` counts the group's recorded messages (+1 each, the first is
 * 1; 0 is "before anything"); `epoch` names the stream and changes whenever its history was lost
 * (Redis flushed or restarted empty, the history expired, an in-memory layer's process restarted),
 * so an offset of another epoch means nothing.
 */
export interface StreamPosition {
  epoch: string;
  offset: number;
}

/** Where a joining member starts: the last `last` messages, or every message after `since`. */
export type JoinFrom = { last: number } | { since: StreamPosition };

export interface JoinResult {
  /**
   * For `since`: whether every message after it was still kept (same epoch, not trimmed); when
   * false, `messages` is empty and the member only gets live messages from `position` on.
   * Always true for `last`.
   */
  recovered: boolean;
  /** The messages to hand the member before any live one, oldest first, each with `offset` and `epoch`. */
  messages: LayerMessage[];
  /**
   * The stream's position after `messages`: its epoch and the offset of the last message the
   * member has (the latest recorded one; 0 for an empty stream). Live delivery to the member's
   * channel starts exactly at `offset + 1`: no gap, no duplicate.
   */
  position: StreamPosition;
}

/** Most messages a `{ last }` join may ask for. */
export const MAX_JOIN_LAST = 100;

/**
 * A group's position (epoch and offset) outlives its last message by a day, so an idle group's `since`
 * still means something; after that the group starts a new epoch, as a group never seen does.
 */
export const POSITION_GRACE_SECONDS = 86_400;

/** The two keys a history group adds to every delivered message; reserved in such groups. */
export const OFFSET_KEY = 'offset';
export const EPOCH_KEY = 'epoch';

/** `groupJoin` of a group that keeps no history (no `setHistory` pattern matches its name). */
export class HistoryNotKept extends ChannelLayerError {
  constructor(readonly group: string) {
    super('HISTORY_NOT_KEPT', `group ${group} keeps no history: call setHistory(pattern, { size, ttl }) with a pattern matching it first, or use groupAdd`);
  }
}

/** A backend that keeps no history (the list layer). */
export class HistoryUnsupported extends ChannelLayerError {
  constructor(detail: string) {
    super('UNSUPPORTED', detail);
  }
}

/** Throws a RangeError naming what is wrong with a policy (whole, positive size and ttl). */
export function validatePolicy(policy: HistoryPolicy): void {
  if (!Number.isInteger(policy?.size) || policy.size < 1) throw new RangeError(`history size must be a positive integer, got ${policy?.size}`);
  if (!Number.isInteger(policy.ttl) || policy.ttl < 1) throw new RangeError(`history ttl must be a positive whole number of seconds, got ${policy.ttl}`);
}

/** Throws a RangeError unless `pattern` is a non-empty string (a glob, as for `channelCapacity`). */
export function checkHistoryPattern(pattern: string): void {
  if (typeof pattern !== 'string' || pattern.length === 0) throw new RangeError(`setHistory: invalid pattern ${JSON.stringify(pattern)}`);
}

/** Throws a RangeError unless `from` is `{ last: 0..100 }` or `{ since: { epoch, offset } }`. */
export function validateJoinFrom(from: JoinFrom): void {
  if (from && 'since' in from) {
    const { epoch, offset } = from.since ?? ({} as StreamPosition);
    if (typeof epoch !== 'string' || !Number.isInteger(offset) || offset < 0) {
      throw new RangeError('groupJoin: since must be { epoch: string, offset: integer >= 0 }');
    }
    return;
  }
  const last = (from as { last?: unknown } | undefined)?.last;
  if (!Number.isInteger(last) || (last as number) < 0 || (last as number) > MAX_JOIN_LAST) {
    throw new RangeError(`groupJoin: last must be an integer from 0 to ${MAX_JOIN_LAST}`);
  }
}
