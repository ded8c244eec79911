// The chat demo: Channels' tutorial protocol, plus chat protocol version 2 (DESIGN.md): names and
// times on messages; `last`, `since`/`epoch` for history and recovery; presence for named connections.
import { randomBytes } from 'node:crypto';
import {
  type ChannelLayer,
  HistoryUnsupported,
  type JoinResult,
  JsonWebsocketConsumer,
  LayerUnavailable,
  type LayerMessage,
  type ReadonlyQuery,
  type PresenceDiff,
  type PresenceMember,
  PresenceUnsupported,
  type RouteParamsOf,
} from '../src';

export const CHAT_ROUTE = 'ws/chat/:room([\\w-]{1,50})/';

/**
 * A display name (query `name=`): 1 to 32 letters, digits, spaces, `-` or `_`, in any script, not
 * starting or ending with a space. Anything else (markup, control characters, emoji) is refused.
 */
export const CHAT_NAME = /^(?=[^ ])[\p{L}\p{M}\p{Nd} _-]{1,32}(?<=[^ ])$/u;

/** What every room keeps (the protocol promises at least the last 100 messages for an hour). */
export const CHAT_HISTORY = { pattern: 'chat_*', size: 100, ttl: 3600 };

/** The most a client may ask with `last=`. */
const MAX_LAST = 100;
const OFFSET = /^\d{1,15}$/;
const EPOCH = /^[\w-]{1,64}$/;

/** The frame of a message: only these fields, so nothing else a sender put in the event reaches clients. */
interface MessageFrame {
  message: unknown;
  time?: number;
  name?: string;
  offset?: number;
  epoch?: string;
}

/**
 * Every local member of a room relays the same event object: the last one's frame is kept so a room
 * of N members serializes it once, not N times (and the server then frames those bytes once).
 */
let lastEvent: LayerMessage | null = null;
let lastFrame = '';

function frameOf(event: LayerMessage): string {
  if (event === lastEvent) return lastFrame;
  const frame: MessageFrame = { message: event.message };
  if (typeof event.time === 'number') frame.time = event.time;
  if (typeof event.name === 'string') frame.name = event.name;
  if (typeof event.offset === 'number') frame.offset = event.offset;
  if (typeof event.epoch === 'string') frame.epoch = event.epoch;
  lastEvent = event;
  lastFrame = JSON.stringify(frame);
  return lastFrame;
}

/**
 * Rooms keep history on every layer the demo runs on that can keep it: set once per layer, where every
 * sender of that layer (other processes, `channelkit publish`) reads it. Resolves false on a layer that
 * keeps none (the list layer): rooms there are live only.
 */
const historySet = new WeakMap<ChannelLayer, Promise<boolean>>();

function ensureHistory(layer: ChannelLayer): Promise<boolean> {
  let kept = historySet.get(layer);
  if (!kept) {
    kept = layer.setHistory(CHAT_HISTORY.pattern, { size: CHAT_HISTORY.size, ttl: CHAT_HISTORY.ttl }).then(
      () => true,
      (error: unknown) => {
        if (error instanceof HistoryUnsupported) return false;
        // Redis down at the first connection: the next connection tries again.
        historySet.delete(layer);
        throw error;
      },
    );
    historySet.set(layer, kept);
  }
  return kept;
}

function noop(): void {}

/** Where a connection asked to start, from its query; a string is what was wrong with it. */
type Start = { kind: 'live' } | { kind: 'last'; last: number } | { kind: 'since'; epoch: string; offset: number };

function startOf(query: ReadonlyQuery): Start | string {
  const since = query.get('since');
  if (since !== null) {
    const epoch = query.get('epoch');
    if (!OFFSET.test(since)) return 'invalid since: an offset (a non-negative integer)';
    if (epoch === null || !EPOCH.test(epoch)) return 'invalid epoch: since needs the epoch of its offset';
    return { kind: 'since', epoch, offset: Number(since) };
  }
  const last = query.get('last');
  if (last !== null) {
    if (!/^\d{1,3}$/.test(last) || Number(last) > MAX_LAST) return `invalid last: 0 to ${MAX_LAST}`;
    return Number(last) === 0 ? { kind: 'live' } : { kind: 'last', last: Number(last) };
  }
  return { kind: 'live' };
}

/**
 * Joins group `chat_<room>`; a client's message is group-sent with the time this server got it and
 * the connection's name (when it gave one), and every member relays it to its client. With `last`
 * or `since` the join replays history first; with `name` the connection is a member of the room's
 * presence. Invalid query values refuse the handshake (HTTP 403) rather than being ignored.
 */
export class ChatConsumer extends JsonWebsocketConsumer<RouteParamsOf<typeof CHAT_ROUTE>> {
  private get group(): string {
    return `chat_${this.scope.params.room}`;
  }

  /** The display name from the query; null when none was given. Checked once, in connect(). */
  private get name(): string | null {
    return this.scope.query.get('name');
  }

  override async connect(): Promise<void> {
    const name = this.name;
    if (name !== null && !CHAT_NAME.test(name)) {
      this.close(4003, 'invalid name: 1-32 letters, digits, spaces, - or _');
      return;
    }
    const start = startOf(this.scope.query);
    if (typeof start === 'string') {
      this.close(4003, start);
      return;
    }
    let joined: JoinResult | null = null;
    // Every room keeps history from its first connection on; a plain one does not wait for it (nor fail on it).
    const history = ensureHistory(this.channelLayer);
    if (start.kind === 'live') {
      history.catch(noop);
      await this.groupAdd(this.group);
    } else if (await history) {
      const from = start.kind === 'last' ? { last: start.last } : { since: { epoch: start.epoch, offset: start.offset } };
      joined = await this.groupJoin(this.group, from);
    } else {
      // No history on this layer: live messages only, and a `since` is told it was not recovered.
      await this.groupAdd(this.group);
      if (start.kind === 'since') joined = { recovered: false, messages: [], position: { epoch: '', offset: 0 } };
    }
    const members = name === null ? null : await this.joinPresence(name);
    this.accept();
    // Live messages wait in the mailbox until connect() returns: the replay goes first, in order.
    if (joined !== null) {
      for (const message of joined.messages) this.send(frameOf(message));
      if (start.kind === 'since') {
        this.sendJson(
          joined.recovered
            ? { type: 'recovered', recovered: true }
            : { type: 'recovered', recovered: false, epoch: joined.position.epoch, offset: joined.position.offset },
        );
      }
    }
    if (members !== null) this.sendJson({ type: 'presence_state', members });
  }

  /** The room's members, this connection included; null on a layer that keeps no presence (no frames then). */
  private async joinPresence(name: string): Promise<PresenceMember[] | null> {
    try {
      return await this.presenceJoin(this.group, { id: randomBytes(6).toString('base64url'), name });
    } catch (error) {
      if (error instanceof PresenceUnsupported) return null;
      throw error;
    }
  }

  override async receiveJson(value: unknown): Promise<void> {
    const message = (value as { message?: unknown } | null)?.message;
    if (typeof message !== 'string') {
      this.sendJson({ error: 'expected {"message": "<text>"}' });
      return;
    }
    const event: LayerMessage = { type: 'chat.message', message, time: Date.now() };
    const name = this.name;
    if (name !== null) event.name = name;
    try {
      await ensureHistory(this.channelLayer);
      await this.groupSend(this.group, event);
    } catch (error) {
      // Redis down: this server's members got it, other servers' did not. Tell the sender, keep the socket.
      if (!(error instanceof LayerUnavailable)) throw error;
      this.sendJson({ error: 'message not delivered to other servers: the channel layer is unavailable, retry later' });
    }
  }

  chatMessage(event: LayerMessage): void {
    this.send(frameOf(event));
  }

  presenceDiff(event: LayerMessage): void {
    const { joins, leaves } = event as unknown as PresenceDiff;
    this.sendJson({ type: 'presence_diff', joins, leaves });
  }
}
