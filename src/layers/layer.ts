// The channel layer contract every backend implements, and the rules they share (names, errors).
import type { LayerStats } from './stats';
import type { HistoryPolicy, JoinFrom, JoinResult } from './history';
import type { PresenceMember, PresenceOptions } from './presence';

/**
 * What travels on a layer: any plain object (a map, as in Channels' spec). `type` is needed only to
 * dispatch to a consumer, where it picks the handler.
 */
export interface LayerMessage {
  type?: string;
  [key: string]: unknown;
}

/**
 * Takes the messages of one channel pushed by the layer (see `ChannelLayer.listen`). An object, not
 * a callback: a consumer's mailbox is one, so a connection costs no closure.
 */
export interface MessageListener {
  /**
   * Returns false when it cannot take the message (a full mailbox): the layer then treats the
   * channel as full, exactly as a queue at `capacity`.
   */
  offer(message: LayerMessage): boolean;
}

/**
 * The transport between consumers and processes, with Django Channels' semantics:
 * at-most-once delivery, in order per sender and channel, bounded by `capacity` and `expiry`.
 */
export interface ChannelLayer {
  /** Queue `message` on `channel`. Throws `ChannelFull` when the channel holds `capacity` messages. */
  send(channel: string, message: LayerMessage): Promise<void>;
  /** Wait for and take the next message of `channel`. */
  receive(channel: string): Promise<LayerMessage>;
  /** A new unique channel name, owned by this process, for `receive` or `listen`. */
  newChannel(prefix?: string): Promise<string>;
  /** Add `channel` to `group`; membership lasts `groupExpiry` seconds unless renewed. */
  groupAdd(group: string, channel: string): Promise<void>;
  /** Remove `channel` from `group`; removing a non-member is not an error. */
  groupDiscard(group: string, channel: string): Promise<void>;
  /** Send `message` to every channel of `group`, in every process. Full members are skipped. */
  groupSend(group: string, message: LayerMessage): Promise<void>;
  /**
   * Push delivery for a channel this process owns (from `newChannel`): every message for it goes to
   * `listener` instead of the `receive` queue. Consumers use this so a connection costs no polling
   * loop. One listener per channel.
   */
  listen(channel: string, listener: MessageListener): Promise<void>;
  /** Stops `listen`; later messages queue for `receive` again. Not listening is not an error. */
  unlisten(channel: string): void;
  /** Drop every message, channel and group this layer can see. For tests and resets. */
  flush(): Promise<void>;
  /** Release connections and timers; pending `receive` calls reject with `LayerClosed`. */
  close(): Promise<void>;
  /** The layer's link to its backend, for `/healthz` and readiness. In-memory layers are always up. */
  health(): LayerHealth;
  /**
   * Messages this process skipped because their channel was full where the sender could not be
   * told: a full member of a group send, or a send from another process. Never a silent drop.
   */
  readonly skippedFull: number;
  /**
   * What the layer counts for /metrics (sends, deliveries, mailbox drops, latency, links): plain integers,
   * read when scraped. Optional, so that a layer written elsewhere need not count; every built-in one does.
   */
  readonly stats?: LayerStats;

  // History and recovery (history.ts). A backend that keeps none throws HistoryUnsupported.
  /**
   * Groups whose name matches `pattern` (an fnmatch glob, as `channelCapacity`'s) keep `policy`'s
   * history from now on; `null` removes the pattern; the first matching pattern wins. Redis layers
   * keep the table in Redis, so every sender on it (any process, the publisher, the CLI) records.
   * In such a group every delivered message carries `offset` and `epoch` (reserved keys there).
   */
  setHistory(pattern: string, policy: HistoryPolicy | null): Promise<void>;
  /**
   * `groupAdd` plus a replay: the last `n` messages, or every message after a position (when the
   * history still covers it). The caller hands `messages` to the member itself; live messages then
   * reach `channel` from `position.offset + 1` on, with no gap and no duplicate. Throws
   * HistoryNotKept for a group without history.
   */
  groupJoin(group: string, channel: string, from: JoinFrom): Promise<JoinResult>;
  /** History reads from the backend by this process (Redis: one per group and process, not per join). */
  readonly historyReads: number;

  // --- presence (src/layers/presence.ts) ---
  /** False for a backend without presence (the list layer): its presence methods throw `PresenceUnsupported`. */
  readonly supportsPresence: boolean;
  /**
   * Makes `member` present in `group`, in every process, and returns the group's members (itself
   * included). From then on `channel` receives `PresenceDiff` messages as members come and go, at
   * most one per group per `presenceInterval`. One member per channel and group: joining again
   * replaces it. Member ids must be unique (one per connection).
   */
  presenceJoin(group: string, channel: string, member: PresenceMember): Promise<PresenceMember[]>;
  /** Ends `channel`'s membership of `group`; not a member is not an error. */
  presenceLeave(group: string, channel: string): Promise<void>;
  /** The members of `group`, in every process (one read). */
  presence(group: string): Promise<PresenceMember[]>;
  /** How many members `group` has, without listing them. */
  presenceCount(group: string): Promise<number>;
}

/**
 * `up`: connected; `degraded`: the backend is unreachable and reconnecting, local delivery still
 * works and cross-process sends fail with `LayerUnavailable`; `closed`: `close()` was called.
 */
export interface LayerHealth {
  state: 'up' | 'degraded' | 'closed';
  /** Backend name, e.g. 'memory', 'redis-pubsub'. */
  backend: string;
  /** What is wrong while degraded (the last connection error). */
  detail?: string;
}

/** The subset of a pino logger the layers use; pino's `logger` (or a child) fits as is. */
export interface LayerLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Options every backend understands; each backend documents its own on top. */
export interface LayerOptions extends PresenceOptions {
  /** Messages a channel may hold before `send` throws `ChannelFull`. Default 100 (as Channels). */
  capacity?: number;
  /** Seconds a queued message lives before it is dropped unseen. Default 60 (as Channels). */
  expiry?: number;
  /** Seconds a group membership lives without a new `groupAdd`. Default 86400 (as Channels). */
  groupExpiry?: number;
  /**
   * Capacity by channel name, as channels_redis's `channel_capacity`: glob patterns (fnmatch's: `*`
   * any run, `?` one character, `[...]` and `[!...]` sets, matched against the whole name) or
   * RegExps, first match wins; a channel that matches none gets `capacity`. E.g.
   * `{ 'http.response!*': 10 }` or `[[/^worker\./, 1000]]`. A record keeps its keys' order, except
   * that all-digit keys come first (JavaScript's rule): use the array form for those. Default none.
   */
  channelCapacity?: Record<string, number> | ReadonlyArray<readonly [string | RegExp, number]>;
}

export const LAYER_DEFAULTS: { capacity: number; expiry: number; groupExpiry: number } = { capacity: 100, expiry: 60, groupExpiry: 86400 };

/** The capacity of one channel under `capacity` and `channelCapacity` (see LayerOptions). */
export type CapacityRule = (channel: string) => number;

/**
 * Compiles `capacity` and `channelCapacity` once into a lookup. Without patterns it is a constant
 * function; with them, answers are cached per name (bounded: names come from every process).
 */
export function capacityRule(options: LayerOptions): CapacityRule {
  const fallback = options.capacity ?? LAYER_DEFAULTS.capacity;
  const given = options.channelCapacity;
  const entries = given === undefined ? [] : Array.isArray(given) ? given : Object.entries(given);
  if (entries.length === 0) return () => fallback;
  const rules = entries.map(([pattern, capacity]: readonly [string | RegExp, number]) => {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`channelCapacity ${String(pattern)}: capacity must be a positive integer, got ${capacity}`);
    }
    // A copy without 'g' or 'y': those make test() stateful, and answers would alternate.
    const test =
      typeof pattern === 'string' ? globToRegExp(pattern)
      : pattern.global || pattern.sticky ? new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''))
      : pattern;
    return { test, capacity };
  });
  const cache = new Map<string, number>();
  return (channel) => {
    let capacity = cache.get(channel);
    if (capacity !== undefined) return capacity;
    capacity = rules.find((rule) => rule.test.test(channel))?.capacity ?? fallback;
    if (cache.size >= 10_000) cache.clear();
    cache.set(channel, capacity);
    return capacity;
  };
}

/** fnmatch's rules, as channels_redis applies them: `*`, `?` and `[...]`; everything else literal. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i];
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else if (char === '[' && classEnd(glob, i) !== -1) {
      const end = classEnd(glob, i);
      let body = glob.slice(i + 1, end);
      const negated = body.startsWith('!');
      if (negated) body = body.slice(1);
      // Inside a class, fnmatch takes '\\', ']' and a leading '^' literally; a RegExp would not.
      source += `[${negated ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else source += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

/** Where the class opened at `start` ends, as fnmatch reads it (a ']' first, or after '!', is literal); -1 if unclosed. */
function classEnd(glob: string, start: number): number {
  let j = start + 1;
  if (glob[j] === '!') j++;
  if (glob[j] === ']') j++;
  return glob.indexOf(']', j);
}

/** Base of every layer error: `code` is stable across releases, the message says what to do. */
export class ChannelLayerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ChannelFull extends ChannelLayerError {
  constructor(readonly channel: string) {
    super('CHANNEL_FULL', `channel ${channel} is full: its reader is not keeping up (raise capacity or slow the sender)`);
  }
}

export class InvalidChannelName extends ChannelLayerError {
  constructor(name: unknown, kind: 'channel' | 'group') {
    super(
      kind === 'channel' ? 'INVALID_CHANNEL_NAME' : 'INVALID_GROUP_NAME',
      `invalid ${kind} name ${JSON.stringify(name)}: use ASCII letters, digits, '-', '_' or '.'` +
        `${kind === 'channel' ? " (and one '!' for process-local channels)" : ''}, fewer than ${MAX_NAME_LENGTH} characters`,
    );
  }
}

export class InvalidMessage extends ChannelLayerError {
  constructor(detail: string) {
    super('INVALID_MESSAGE', `invalid layer message: ${detail}; send a plain object (with a string "type" to reach a consumer)`);
  }
}

export class LayerUnavailable extends ChannelLayerError {
  constructor(detail: string) {
    super('LAYER_UNAVAILABLE', `channel layer unavailable: ${detail}; the message was not sent, retry later`);
  }
}

export class LayerClosed extends ChannelLayerError {
  constructor() {
    super('LAYER_CLOSED', 'channel layer is closed');
  }
}

/** Channels' limit: names are shorter than 100 characters. */
export const MAX_NAME_LENGTH = 100;
const CHANNEL_NAME = /^[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?$/;
const GROUP_NAME = /^[a-zA-Z\d\-_.]+$/;

/**
 * The names found valid last. A connection's channel is checked by each layer call it makes in a row
 * (newChannel, listen, groupAdd), and its group by every member's: a name equal to the last one is
 * answered by a comparison, not a regular expression.
 */
let lastValidChannel = '';
let lastValidGroup = '';

export function validateChannelName(name: unknown): asserts name is string {
  if (name === lastValidChannel) return;
  if (typeof name !== 'string' || name.length >= MAX_NAME_LENGTH || !CHANNEL_NAME.test(name)) {
    throw new InvalidChannelName(name, 'channel');
  }
  lastValidChannel = name;
}

export function validateGroupName(name: unknown): asserts name is string {
  if (name === lastValidGroup) return;
  if (typeof name !== 'string' || name.length >= MAX_NAME_LENGTH || !GROUP_NAME.test(name)) {
    throw new InvalidChannelName(name, 'group');
  }
  lastValidGroup = name;
}

/** A layer message is any plain object (Channels' "dict"); only dispatch to a consumer needs `type`. */
export function validateMessage(message: unknown): asserts message is LayerMessage {
  if (message === null || typeof message !== 'object' || Array.isArray(message) || message instanceof Uint8Array) {
    throw new InvalidMessage('not an object');
  }
}

/*
 * The checks at the top of every layer operation, in one order: a closed layer first, then names,
 * then the message. Plain functions (no closure, no object per call), shared by every backend.
 */

export function checkOpen(closed: boolean): void {
  if (closed) throw new LayerClosed();
}

/** `send`: open, a valid channel name, a plain-object message. */
export function checkSend(closed: boolean, channel: string, message: LayerMessage): void {
  if (closed) throw new LayerClosed();
  validateChannelName(channel);
  validateMessage(message);
}

/** `groupSend`: open, a valid group name, a plain-object message. */
export function checkGroupSend(closed: boolean, group: string, message: LayerMessage): void {
  if (closed) throw new LayerClosed();
  validateGroupName(group);
  validateMessage(message);
}

/** `groupAdd` and `groupDiscard`: open (pass false where leaving works after close), valid names. */
export function checkMembership(closed: boolean, group: string, channel: string): void {
  if (closed) throw new LayerClosed();
  validateGroupName(group);
  validateChannelName(channel);
}

/** `receive` and `listen`: open and a valid channel name. */
export function checkChannel(closed: boolean, channel: string): void {
  if (closed) throw new LayerClosed();
  validateChannelName(channel);
}

/** The part of a process-local channel name before and including '!' ("specific.abc!"), or null. */
export function nonLocalName(channel: string): string {
  const bang = channel.indexOf('!');
  return bang === -1 ? channel : channel.slice(0, bang + 1);
}

export function isProcessLocal(channel: string): boolean {
  return channel.includes('!');
}
