// History and recovery: what a group keeps, where a member stands in it, and what a join replays.
import type { LayerMessage } from './layer';

/** How much of a group's stream is kept: the last `size` messages, each for at most `ttl` seconds. */
export interface HistoryPolicy {
  /** Messages kept per group (the oldest are trimmed). */
  size: number;
  /** Seconds a recorded message is kept. */
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
