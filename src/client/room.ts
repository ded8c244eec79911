// A chat room over protocol v2: history on entry, recovery after a drop, no duplicates, presence.
import { Client, type ClientOptions, type ClientState, type StateChange, type UrlSource } from './client.js';
import { Emitter, type Listener } from './emitter.js';
import type { ClientError } from './errors.js';
import { Presence, type PresenceChange, type PresenceMember } from './presence.js';
import { type StreamPosition, StreamTracker } from './stream.js';
import { resolveUrl } from './web-socket.js';

/**
 * A message frame: `message` as sent; through channelkit also `time` (ms since the Unix epoch),
 * `offset` and `epoch` (its place in the room's stream) and `name` (when the sender had one). A
 * group send from elsewhere (channels_redis) carries `message` and whatever else it put there.
 */
export interface RoomMessage {
  message: unknown;
  time?: number;
  offset?: number;
  epoch?: string;
  name?: string;
  [field: string]: unknown;
}

/**
 * After a reconnect with `since`: whether every missed message came (they arrived, as `message`
 * events, before this one). When not, the room is at (`epoch`, `offset`) and, if `reload`, the room
 * reconnects at once asking the last `last` messages (offsets the app already has are not repeated).
 */
export type RecoveredEvent = { recovered: true } | { recovered: false; epoch: string; offset: number; reload: boolean };

export interface RoomEvents {
  state: StateChange;
  message: RoomMessage;
  recovered: RecoveredEvent;
  presence: PresenceChange;
  /** Any other frame: `{"error": ...}` from the chat consumer, or a `type` this client does not know. */
  frame: unknown;
  error: ClientError;
}

export interface RoomOptions extends Omit<ClientOptions, 'url'> {
  /**
   * The room's socket, e.g. `/ws/chat/lobby/?name=alice`, or a function returning it before each
   * attempt (see `Client`). The room sets `last`, `since` and `epoch` itself; other query parameters
   * (`name`, `token`) are kept.
   */
  url: UrlSource;
  /**
   * Messages (0-100) to ask on entry, and again on a reconnect when recovery failed or when no message
   * was seen yet. Default 0: none (live messages only; after a failed recovery the room goes on live).
   */
  last?: number;
}

/**
 * One room of the chat protocol, version 2:
 * ```ts
 * const room = new Room({ url: `/ws/chat/lobby/?name=${encodeURIComponent(name)}`, last: 50 });
 * room.on('message', (m) => show(m.name, m.message, m.time));
 * room.on('recovered', (r) => { if (!r.recovered) notice('some messages were missed'); });
 * room.on('presence', ({ members }) => list([...members.values()].map((m) => m.name)));
 * room.send({ message: 'hi' });
 * ```
 * It remembers the epoch and offset of the last message and reconnects with `since` and `epoch`, so
 * the server replays what was missed; it never hands the app an offset it already handed (within an
 * epoch), and keeps the presence map from the server's snapshot and diffs.
 */
export class Room {
  private readonly client: Client;
  private readonly emitter = new Emitter<RoomEvents>();
  private readonly stream = new StreamTracker();
  private readonly presence = new Presence();
  private readonly last: number;
  /** Recovery failed: the next connection asks `last` rather than `since`, until one opens. */
  private reload = false;

  constructor(options: RoomOptions) {
    const { url, last = 0, ...rest } = options;
    if (!Number.isInteger(last) || last < 0 || last > 100) throw new RangeError(`last must be an integer from 0 to 100, not ${last}`);
    this.last = last;
    this.client = new Client({ ...rest, url: () => this.nextUrl(url) });
    this.client.on('state', (change) => this.stateChanged(change));
    this.client.on('message', (value) => this.frame(value));
    this.client.on('error', (error) => this.emitter.emit('error', error));
  }

  get state(): ClientState {
    return this.client.state;
  }

  /** The epoch and offset of the last message handed to the app; null before any. */
  get position(): StreamPosition | null {
    return this.stream.position;
  }

  /** Who is in the room, by connection id (empty for a connection without `name`, which is no member). */
  get members(): ReadonlyMap<string, PresenceMember> {
    return this.presence.members;
  }

  /** Messages dropped because their offset was already handed to the app. */
  get duplicates(): number {
    return this.stream.duplicates;
  }

  on<K extends keyof RoomEvents>(type: K, listener: Listener<RoomEvents[K]>): () => void {
    return this.emitter.on(type, listener);
  }

  /** `room.send({ message: 'hi' })`; false, sending nothing, while not open. */
  send(value: unknown): boolean {
    return this.client.send(value);
  }

  /** Reconnects now (recovering from the last message); see `Client.reconnect`. */
  reconnect(): void {
    this.client.reconnect();
  }

  close(code?: number, reason?: string): Promise<void> {
    return this.client.close(code, reason);
  }

  /** The URL of the next attempt: the app's, with `since` and `epoch` when the room knows where it was, else `last`. */
  private async nextUrl(source: UrlSource): Promise<string> {
    const url = new URL(resolveUrl(typeof source === 'function' ? await source() : source));
    const query = url.searchParams;
    for (const name of ['since', 'epoch', 'last']) query.delete(name);
    const position = this.stream.position;
    if (position !== null && !this.reload) {
      query.set('since', String(position.offset));
      query.set('epoch', position.epoch);
    } else if (this.last > 0) {
      query.set('last', String(this.last));
    }
    return url.href;
  }

  private stateChanged(change: StateChange): void {
    if (change.state === 'open') this.reload = false;
    this.emitter.emit('state', change);
    if (change.state === 'closed') {
      const left = this.presence.clear();
      if (left !== null) this.emitter.emit('presence', left);
    }
  }

  private frame(value: unknown): void {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.emitter.emit('frame', value);
      return;
    }
    const frame = value as Record<string, unknown>;
    switch (frame.type) {
      case undefined:
        if (!('message' in frame)) break;
        // Reloading: what still comes on the old socket, the `last` of the next one brings again; taken
        // now, its offsets would make the reload's older messages look like duplicates.
        if (this.reload) return;
        if (this.stream.accept(frame)) this.emitter.emit('message', frame as RoomMessage);
        return;
      case 'recovered':
        return this.recovered(frame);
      case 'presence_state':
        this.emitter.emit('presence', this.presence.snapshot(frame.members));
        return;
      case 'presence_diff': {
        const change = this.presence.diff(frame.joins, frame.leaves);
        if (change !== null) this.emitter.emit('presence', change);
        return;
      }
    }
    this.emitter.emit('frame', frame);
  }

  private recovered(frame: Record<string, unknown>): void {
    if (frame.recovered === true) {
      this.emitter.emit('recovered', { recovered: true });
      return;
    }
    const epoch = typeof frame.epoch === 'string' ? frame.epoch : '';
    const offset = typeof frame.offset === 'number' ? frame.offset : 0;
    const reload = this.last > 0;
    this.stream.lost(epoch, offset, reload);
    this.emitter.emit('recovered', { recovered: false, epoch, offset, reload });
    if (reload) {
      this.reload = true;
      this.client.reconnect();
    }
  }
}
