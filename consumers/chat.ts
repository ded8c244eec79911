// The chat demo (Channels' tutorial protocol, and chat protocol version 2's names and times):
// {"message": "hi"} reaches every client of the room as {"message": "hi", "time": <ms>, "name"?: "..."}.
import { JsonWebsocketConsumer, LayerUnavailable, type LayerMessage, type RouteParamsOf } from '../src';

export const CHAT_ROUTE = 'ws/chat/:room([\\w-]{1,50})/';

/**
 * A display name (query `name=`): 1 to 32 letters, digits, spaces, `-` or `_`, in any script, not
 * starting or ending with a space. Anything else (markup, control characters, emoji) is refused.
 */
export const CHAT_NAME = /^(?=[^ ])[\p{L}\p{M}\p{Nd} _-]{1,32}(?<=[^ ])$/u;

/** The frame of a message: only these fields, so nothing else a sender put in the event reaches clients. */
interface MessageFrame {
  message: unknown;
  time?: number;
  name?: string;
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
  lastEvent = event;
  lastFrame = JSON.stringify(frame);
  return lastFrame;
}

/**
 * Joins group `chat_<room>`; a client's message is group-sent with the time this server got it and
 * the connection's name (when it gave one), and every member relays it to its client. A connection
 * with an invalid `name` is refused (HTTP 403) rather than silently made anonymous.
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
    await this.groupAdd(this.group);
    this.accept();
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
}
