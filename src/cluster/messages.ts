// The IPC messages between a worker's WorkersChannelLayer and the primary's WorkersRelay (node:cluster).
import type { HistoryPolicy, JoinFrom, StreamPosition } from '../layers/history';
import type { PresenceMember } from '../layers/presence';

/*
 * What crosses the pipe is a batch: the messages one side produced in one synchronous run (a publisher's
 * loop of group sends is one IPC write, not one per send). Order is kept within and across batches.
 * Bodies are msgpack bytes, encoded once by the sending worker and decoded once by each receiving
 * worker; the primary never decodes them. The cluster runs with `serialization: 'advanced'`, so a
 * Uint8Array crosses the pipe as bytes (JSON would turn it into an array of numbers).
 * Every message carries `ck`, which no message of Node's own cluster protocol has.
 */

/** From a worker to the primary. */
export type WorkerMessage =
  /** The group's first member in this worker: route its group sends here. Answered with `ack`. */
  | { ck: 'join'; group: string; seq: number }
  /** The group's last member in this worker left (or expired). */
  | { ck: 'leave'; group: string }
  /** This worker reads the named (not process-local) channel: route its sends here. */
  | { ck: 'claim'; channel: string }
  /** A group send, for every other worker with members. */
  | { ck: 'group'; group: string; body: Uint8Array }
  /** A send to a process-local channel of worker `to`. */
  | { ck: 'send'; to: number; channel: string; body: Uint8Array }
  /** A send to a named channel, for the workers that claimed it. */
  | { ck: 'named'; channel: string; body: Uint8Array }
  /** This worker's layer is ready for messages: answered with `policies`, then policy changes follow. */
  | { ck: 'hello' }
  /** setHistory from this worker: the primary keeps the table, tells every worker, and answers `ack` once all have applied it. */
  | { ck: 'policy'; pattern: string; policy: HistoryPolicy | null; seq: number }
  /** This worker applied the table change the primary numbered `seq`. */
  | { ck: 'applied'; seq: number }
  /** A group send to a history group: the primary stamps (epoch, offset) and keeps it, then sends it to every worker with members, this one included. */
  | { ck: 'record'; group: string; body: Uint8Array }
  /** groupJoin: the replay from the primary's history and this worker made a member there, in one step. Answered with `recalled`. */
  | { ck: 'recall'; group: string; from: JoinFrom; seq: number }
  /** A presence join on this worker: the primary adds it, tells the workers with members, answers `members` (the snapshot). */
  | { ck: 'pjoin'; group: string; member: PresenceMember; seq: number }
  /** A presence leave on this worker (of a member it holds). */
  | { ck: 'pleave'; group: string; id: string }
  /** presence() or presenceCount(): answered with `members`. */
  | { ck: 'plist'; group: string; seq: number }
  /** Forget this worker's groups and claims, and every group's history (its layer was flushed). */
  | { ck: 'flush'; seq: number }
  /** This worker's layer closed: forget it. */
  | { ck: 'bye' };

/** From the primary to one worker. */
export type PrimaryMessage =
  | { ck: 'ack'; seq: number }
  /** The whole setHistory table, in order (the answer to `hello`), or one change to it. */
  | { ck: 'policies'; table: Array<[string, HistoryPolicy]> }
  /** `seq` numbers it on the primary's side: the worker answers `applied` with it. */
  | { ck: 'policy'; pattern: string; policy: HistoryPolicy | null; seq: number }
  /** A group's presence members: a join's snapshot, or a list. */
  | { ck: 'members'; seq: number; members: PresenceMember[] }
  /** A presence change in a group this worker holds members of (its own changes included). */
  | { ck: 'pjoined'; group: string; member: PresenceMember }
  | { ck: 'pleft'; group: string; member: PresenceMember }
  /** A join's replay: stamped bodies, oldest first; `kept` false when the group keeps no history. */
  | { ck: 'recalled'; seq: number; kept: boolean; recovered: boolean; bodies: Uint8Array[]; position: StreamPosition }
  | { ck: 'group'; group: string; body: Uint8Array }
  | { ck: 'send'; channel: string; body: Uint8Array };

/** One IPC message from a worker: its messages of one synchronous run, in order. */
export interface WorkerBatch {
  ck: 'batch';
  messages: WorkerMessage[];
}

/** One IPC message from the primary to a worker. */
export interface PrimaryBatch {
  ck: 'batch';
  messages: PrimaryMessage[];
}

/** True for a message of this protocol (a worker's IPC also carries Node's own cluster messages). */
export function isRelayMessage(message: unknown): boolean {
  return typeof message === 'object' && message !== null && typeof (message as { ck?: unknown }).ck === 'string';
}
