import { application } from '../../routing';
import { InMemoryChannelLayer } from '../../src';
import { WebsocketCommunicator } from '../../src/testing';

describe('ChatConsumer', () => {
  let layer: InMemoryChannelLayer;
  beforeEach(() => (layer = new InMemoryChannelLayer()));
  afterEach(() => layer.close());

  const join = async (room: string) => {
    const communicator = new WebsocketCommunicator(application, `/ws/chat/${room}/`, { channelLayer: layer });
    expect((await communicator.connect()).connected).toBe(true);
    return communicator;
  };

  test('a message reaches every client of the room, and only that room', async () => {
    const [alice, bob, elsewhere] = [await join('lobby'), await join('lobby'), await join('kitchen')];
    alice.sendJsonTo({ message: 'hi' });
    expect(await alice.receiveJsonFrom()).toEqual({ message: 'hi' });
    expect(await bob.receiveJsonFrom()).toEqual({ message: 'hi' });
    expect(await elsewhere.receiveNothing()).toBe(true);
    await Promise.all([alice.disconnect(), bob.disconnect(), elsewhere.disconnect()]);
  });

  test('a group send of chat.message from outside reaches the room', async () => {
    const client = await join('lobby');
    await layer.groupSend('chat_lobby', { type: 'chat.message', message: 'from a backend' });
    expect(await client.receiveJsonFrom()).toEqual({ message: 'from a backend' });
    await client.disconnect();
  });

  test('a frame without a string message gets an error frame and the socket stays open', async () => {
    const client = await join('lobby');
    client.sendJsonTo({ text: 'wrong field' });
    expect(await client.receiveJsonFrom()).toEqual({ error: 'expected {"message": "<text>"}' });
    client.sendJsonTo({ message: 'right' });
    expect(await client.receiveJsonFrom()).toEqual({ message: 'right' });
    await client.disconnect();
  });

  test('room names that would make invalid group names are refused with 404', async () => {
    for (const room of ['bad%20room', 'a'.repeat(51), 'semi;colon']) {
      const communicator = new WebsocketCommunicator(application, `/ws/chat/${room}/`, { channelLayer: layer });
      expect(await communicator.connect()).toEqual({ connected: false, status: 404 });
    }
  });
});
