// Consumer.groupJoin: a replay for the consumer to send, live messages after it, left on disconnect.
import { InMemoryChannelLayer, JsonWebsocketConsumer, type LayerMessage, URLRouter, path } from '../../src';
import { WebsocketCommunicator } from '../../src/testing';

class Room extends JsonWebsocketConsumer {
  override async connect(): Promise<void> {
    this.accept();
    const { messages, position } = await this.groupJoin('room', { last: 2 });
    for (const message of messages) this.sendJson({ replay: message.text, offset: message.offset });
    this.sendJson({ position });
  }
  chatMessage(message: LayerMessage): void {
    this.sendJson({ live: message.text, offset: message.offset });
  }
}

describe('Consumer.groupJoin', () => {
  test('replays the last messages, then live ones from the next offset, and leaves the group on disconnect', async () => {
    const layer = new InMemoryChannelLayer();
    await layer.setHistory('room', { size: 10, ttl: 60 });
    for (const text of ['a', 'b', 'c']) await layer.groupSend('room', { type: 'chat.message', text });
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/room/', Room)]), '/ws/room/', { channelLayer: layer });
    await communicator.connect();
    expect(await communicator.receiveJsonFrom()).toEqual({ replay: 'b', offset: 2 });
    expect(await communicator.receiveJsonFrom()).toEqual({ replay: 'c', offset: 3 });
    expect(await communicator.receiveJsonFrom()).toEqual({ position: { epoch: expect.any(String), offset: 3 } });
    await layer.groupSend('room', { type: 'chat.message', text: 'd' });
    expect(await communicator.receiveJsonFrom()).toEqual({ live: 'd', offset: 4 });
    await communicator.disconnect();
    await layer.groupSend('room', { type: 'chat.message', text: 'after' });
    expect(await communicator.receiveNothing()).toBe(true);
    await layer.close();
  });
});
