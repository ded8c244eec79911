// Presence: who is connected to a group, in every process, as a snapshot and then batched diffs.
import { ChannelLayerError } from './layer';

/** One member of a group's presence: one connection (two tabs are two members). */
export interface PresenceMember {
  /** Unique per connection; chosen by the consumer (not the layer channel name, which is internal). */
  id: string;
  /** A display name, when the connection gave one. */
  name?: string;
}

/**
 * The layer message a presence member's channel receives as others come and go, in any process:
 * at most one per group per batching interval (default 100 ms). A member that joined and left
 * within one interval appears in neither list. A member's own join is not echoed to it (its
 * snapshot holds it); a diff may repeat a change its snapshot already showed (apply joins, then
 * leaves, to a map keyed by id).
 */
export interface PresenceDiff {
  type: 'presence.diff';
  group: string;
  joins: PresenceMember[];
  leaves: PresenceMember[];
}

/**
 * What every backend's presence offers, beside `ChannelLayer`'s other methods. Diffs reach a
 * member's channel as `PresenceDiff` layer messages (a consumer handles them in `presenceDiff`).
 * Apply a diff to a map keyed by `id`: its joins, then its leaves. A member's own join is never in
 * its diffs, but a diff may repeat another change the snapshot already showed (one that happened
 * while it was read): applied that way, that is harmless.
 */
export interface PresenceOptions {
  /** Milliseconds over which changes are merged into one diff per group and channel. Default 100. */
  presenceInterval?: number;
}

export const PRESENCE_DEFAULTS = { presenceInterval: 100 } as const;

/** Longest member id and name accepted: they travel in every diff. */
const MAX_ID = 100;
const MAX_NAME = 200;

export class InvalidPresenceMember extends ChannelLayerError {
  constructor(detail: string) {
    super('INVALID_PRESENCE_MEMBER', `invalid presence member: ${detail}; give { id: string (1-${MAX_ID} chars), name?: string (up to ${MAX_NAME}) }`);
  }
}

/** The backend keeps no presence (the list layer): use the pub/sub layer for presence. */
export class PresenceUnsupported extends ChannelLayerError {
  constructor(backend: string) {
    super('UNSUPPORTED', `presence is not supported by the ${backend} layer; use RedisPubSubChannelLayer (or the in-memory layer)`);
  }
}

/** A checked copy holding only `id` and `name` (so nothing else a caller put on it travels). */
export function presenceMember(member: unknown): PresenceMember {
  if (member === null || typeof member !== 'object') throw new InvalidPresenceMember('not an object');
  const { id, name } = member as Record<string, unknown>;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID) throw new InvalidPresenceMember(`id ${JSON.stringify(id)}`);
  if (name === undefined) return { id };
  if (typeof name !== 'string' || name.length > MAX_NAME) throw new InvalidPresenceMember(`name of ${id}`);
  return { id, name };
}
