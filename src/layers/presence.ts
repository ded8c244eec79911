// Presence: who is connected to a group, in every process, as a snapshot and then batched diffs.

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
 * within one interval appears in neither list.
 */
export interface PresenceDiff {
  type: 'presence.diff';
  group: string;
  joins: PresenceMember[];
  leaves: PresenceMember[];
}
