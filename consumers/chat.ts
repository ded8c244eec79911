// The chat demo (Channels' tutorial protocol): {"message": "hi"} reaches every client of the room.
import { JsonWebsocketConsumer, LayerUnavailable, type LayerMessage, type RouteParamsOf } from '../src';

export const CHAT_ROUTE = 'ws/chat/:room([\\w-]{1,50})/';

/** Joins group `chat_<room>`; a client's message is group-sent, and every member relays it to its client. */
export class ChatConsumer extends JsonWebsocketConsumer<RouteParamsOf<typeof CHAT_ROUTE>> {
  private get group(): string {
    return `chat_${this.scope.params.room}`;
  }

  override async connect(): Promise<void> {
    await this.groupAdd(this.group);
    this.accept();
  }

  override async receiveJson(value: unknown): Promise<void> {
    const message = (value as { message?: unknown } | null)?.message;
    if (typeof message !== 'string') {
      this.sendJson({ error: 'expected {"message": "<text>"}' });
      return;
    }
    try {
      await this.groupSend(this.group, { type: 'chat.message', message });
    } catch (error) {
      // Redis down: this server's members got it, other servers' did not. Tell the sender, keep the socket.
      if (!(error instanceof LayerUnavailable)) throw error;
      this.sendJson({ error: 'message not delivered to other servers: the channel layer is unavailable, retry later' });
    }
  }

  chatMessage(event: LayerMessage): void {
    this.sendJson({ message: event.message });
  }
}
