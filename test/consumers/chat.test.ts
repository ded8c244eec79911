import { application } from '../../routing';
import { InMemoryChannelLayer } from '../../src';
import { WebsocketCommunicator } from '../../src/testing';

describe('ChatConsumer', () => {
  let layer: InMemoryChannelLayer;
  beforeEach(() => (layer = new InMemoryChannelLayer()));
  afterEach(() => layer.close());

  /** Joins `room`, with a display name when `name` is given (query `name=`). */
  const join = async (room: string, name?: string) => {
    const query = name === undefined ? '' : `?name=${encodeURIComponent(name)}`;
    const communicator = new WebsocketCommunicator(application, `/ws/chat/${room}/${query}`, { channelLayer: layer });
    expect((await communicator.connect()).connected).toBe(true);
    // A named connection is a member of the room's presence: its first frame is the member list.
    if (name !== undefined) expect(await communicator.receiveJsonFrom()).toMatchObject({ type: 'presence_state' });
    return communicator;
  };
  /** Every message of a room is recorded: its frame carries the room's offset and epoch. */
  const recorded = { offset: expect.any(Number), epoch: expect.any(String) };

  test('a message reaches every client of the room, and only that room, with the time it was sent', async () => {
    const [alice, bob, elsewhere] = [await join('lobby'), await join('lobby'), await join('kitchen')];
    const before = Date.now();
    alice.sendJsonTo({ message: 'hi' });
    const frame = (await alice.receiveJsonFrom()) as { time: number };
    expect(frame).toEqual({ message: 'hi', time: expect.any(Number), ...recorded });
    expect(frame.time).toBeGreaterThanOrEqual(before);
    expect(frame.time).toBeLessThanOrEqual(Date.now());
    expect(await bob.receiveJsonFrom()).toEqual(frame);
    expect(await elsewhere.receiveNothing()).toBe(true);
    await Promise.all([alice.disconnect(), bob.disconnect(), elsewhere.disconnect()]);
  });

  test('a named connection\'s messages carry its name; a plain connection\'s carry none', async () => {
    const [alice, plain] = [await join('lobby', 'Alice B-2_x'), await join('lobby')];
    alice.sendJsonTo({ message: 'from alice' });
    const fromAlice = { message: 'from alice', name: 'Alice B-2_x', time: expect.any(Number), ...recorded };
    expect(await alice.receiveJsonFrom()).toEqual(fromAlice);
    expect(await plain.receiveJsonFrom()).toEqual(fromAlice);
    plain.sendJsonTo({ message: 'anonymous' });
    const anonymous = { message: 'anonymous', time: expect.any(Number), ...recorded };
    expect(await alice.receiveJsonFrom()).toEqual(anonymous);
    expect(await plain.receiveJsonFrom()).toEqual(anonymous);
    await Promise.all([alice.disconnect(), plain.disconnect()]);
  });

  test('a client cannot choose the name, time or type of its message', async () => {
    const [alice, bob] = [await join('lobby', 'alice'), await join('lobby')];
    const before = Date.now();
    alice.sendJsonTo({ message: 'spoof', name: 'bob', time: 1, type: 'presence_diff' });
    const frame = (await bob.receiveJsonFrom()) as { time: number };
    expect(frame).toEqual({ message: 'spoof', name: 'alice', time: expect.any(Number), ...recorded });
    expect(frame.time).toBeGreaterThanOrEqual(before);
    bob.sendJsonTo({ message: 'spoof too', name: 'alice' });
    expect(await alice.receiveJsonFrom()).toMatchObject({ message: 'spoof' });
    expect(await alice.receiveJsonFrom()).toEqual({ message: 'spoof too', time: expect.any(Number), ...recorded });
    await Promise.all([alice.disconnect(), bob.disconnect()]);
  });

  test('names: 1-32 letters, digits, spaces, - or _; anything else refuses the handshake with 403', async () => {
    for (const name of ['Zoë', 'José María', '李小龙', 'a', 'x'.repeat(32), 'under_score-dash 9']) {
      const client = await join('lobby', name);
      client.sendJsonTo({ message: 'ok' });
      expect(await client.receiveJsonFrom()).toMatchObject({ name });
      await client.disconnect();
    }
    for (const name of ['', ' ', '   ', ' lead', 'trail ', 'x'.repeat(33), 'semi;colon', '<b>', 'new\nline', 'tab\tname', 'emoji 🙂', 'dot.name']) {
      const communicator = new WebsocketCommunicator(application, `/ws/chat/lobby/?name=${encodeURIComponent(name)}`, { channelLayer: layer });
      expect([name, await communicator.connect()]).toEqual([name, { connected: false, status: 403 }]);
    }
  });

  test('a group send from another process keeps its time and name; a publish without them has neither', async () => {
    const client = await join('lobby');
    await layer.groupSend('chat_lobby', { type: 'chat.message', message: 'relayed', time: 1_700_000_000_000, name: 'Remote' });
    expect(await client.receiveJsonFrom()).toEqual({ message: 'relayed', time: 1_700_000_000_000, name: 'Remote', ...recorded });
    // As `channelkit publish` sends it: no name, no time; and no field of the wrong type is relayed.
    await layer.groupSend('chat_lobby', { type: 'chat.message', message: 'published' });
    expect(await client.receiveJsonFrom()).toEqual({ message: 'published', ...recorded });
    await layer.groupSend('chat_lobby', { type: 'chat.message', message: 'odd', time: 'noon', name: 42 });
    expect(await client.receiveJsonFrom()).toEqual({ message: 'odd', ...recorded });
    await client.disconnect();
  });

  test('a group send of chat.message from outside reaches the room', async () => {
    const client = await join('lobby');
    await layer.groupSend('chat_lobby', { type: 'chat.message', message: 'from a backend' });
    expect(await client.receiveJsonFrom()).toEqual({ message: 'from a backend', ...recorded });
    await client.disconnect();
  });

  test('a frame without a string message gets an error frame and the socket stays open', async () => {
    const client = await join('lobby');
    client.sendJsonTo({ text: 'wrong field' });
    expect(await client.receiveJsonFrom()).toEqual({ error: 'expected {"message": "<text>"}' });
    client.sendJsonTo({ message: 'right' });
    expect(await client.receiveJsonFrom()).toEqual({ message: 'right', time: expect.any(Number), ...recorded });
    await client.disconnect();
  });

  test('room names that would make invalid group names are refused with 404', async () => {
    for (const room of ['bad%20room', 'a'.repeat(51), 'semi;colon']) {
      const communicator = new WebsocketCommunicator(application, `/ws/chat/${room}/`, { channelLayer: layer });
      expect(await communicator.connect()).toEqual({ connected: false, status: 404 });
    }
  });
});

describe('ChatConsumer, protocol version 2: history, recovery, presence', () => {
  let layer: InMemoryChannelLayer;
  beforeEach(() => (layer = new InMemoryChannelLayer()));
  afterEach(() => layer.close());

  const open = async (room: string, query = '') => {
    const communicator = new WebsocketCommunicator(application, `/ws/chat/${room}/${query}`, { channelLayer: layer });
    expect((await communicator.connect()).connected).toBe(true);
    return communicator;
  };
  type Frame = { message?: string; offset?: number; epoch?: string; type?: string; [key: string]: unknown };

  /** Sends `count` messages through `sender` and returns the frames it got back. */
  const say = async (sender: WebsocketCommunicator, texts: string[]): Promise<Frame[]> => {
    for (const message of texts) sender.sendJsonTo({ message });
    const frames: Frame[] = [];
    for (let i = 0; i < texts.length; i++) frames.push((await sender.receiveJsonFrom()) as Frame);
    return frames;
  };

  test('message frames carry offset (+1 each) and epoch; last=N replays the last N oldest first, with no recovered frame', async () => {
    const alice = await open('lobby');
    const sent = await say(alice, ['one', 'two', 'three']);
    expect(sent.map((frame) => frame.offset)).toEqual([1, 2, 3]);
    expect(new Set(sent.map((frame) => frame.epoch)).size).toBe(1);
    expect(sent[0]).toEqual({ message: 'one', time: expect.any(Number), offset: 1, epoch: expect.any(String) });

    const late = await open('lobby', '?last=2');
    expect(await late.receiveJsonFrom()).toEqual(sent[1]);
    expect(await late.receiveJsonFrom()).toEqual(sent[2]);
    expect(await late.receiveNothing()).toBe(true);
    alice.sendJsonTo({ message: 'four' });
    expect(await late.receiveJsonFrom()).toMatchObject({ message: 'four', offset: 4 });
    await Promise.all([alice.disconnect(), late.disconnect()]);
  });

  test('since=&epoch= replays every later message in order, then recovered true, then live ones exactly once', async () => {
    const alice = await open('lobby');
    const sent = await say(alice, ['a', 'b', 'c', 'd']);
    const back = await open('lobby', `?since=1&epoch=${sent[0].epoch}`);
    for (const frame of sent.slice(1)) expect(await back.receiveJsonFrom()).toEqual(frame);
    expect(await back.receiveJsonFrom()).toEqual({ type: 'recovered', recovered: true });
    alice.sendJsonTo({ message: 'e' });
    expect(await back.receiveJsonFrom()).toMatchObject({ message: 'e', offset: 5 });
    expect(await back.receiveNothing()).toBe(true);
    await Promise.all([alice.disconnect(), back.disconnect()]);
  });

  test('since on another epoch is not recovered: only the room\'s epoch and latest offset', async () => {
    const alice = await open('lobby');
    const sent = await say(alice, ['a', 'b']);
    const back = await open('lobby', '?since=1&epoch=not-this-one');
    expect(await back.receiveJsonFrom()).toEqual({ type: 'recovered', recovered: false, epoch: sent[0].epoch, offset: 2 });
    expect(await back.receiveNothing()).toBe(true);
    await Promise.all([alice.disconnect(), back.disconnect()]);
  });

  test('invalid last, since or epoch refuse the handshake with 403', async () => {
    for (const query of ['?last=101', '?last=-1', '?last=x', '?since=1', '?since=x&epoch=e', '?since=1&epoch=bad%20epoch', `?since=1&epoch=${'e'.repeat(65)}`]) {
      const communicator = new WebsocketCommunicator(application, `/ws/chat/lobby/${query}`, { channelLayer: layer });
      expect([query, await communicator.connect()]).toEqual([query, { connected: false, status: 403 }]);
    }
  });

  test('a named connection gets presence_state (itself included), then presence_diff as others come and go; plain ones get none', async () => {
    const alice = await open('lobby', '?name=Alice');
    const state = (await alice.receiveJsonFrom()) as { type: string; members: { id: string; name: string }[] };
    expect(state).toEqual({ type: 'presence_state', members: [{ id: expect.any(String), name: 'Alice' }] });
    const plain = await open('lobby');
    const bob = await open('lobby', '?name=Bob');
    const bobState = (await bob.receiveJsonFrom()) as typeof state;
    expect(bobState.members.map((member) => member.name).sort()).toEqual(['Alice', 'Bob']);
    const bobId = bobState.members.find((member) => member.name === 'Bob')!.id;
    expect(await alice.receiveJsonFrom()).toEqual({ type: 'presence_diff', joins: [{ id: bobId, name: 'Bob' }], leaves: [] });
    await bob.disconnect();
    expect(await alice.receiveJsonFrom()).toEqual({ type: 'presence_diff', joins: [], leaves: [{ id: bobId, name: 'Bob' }] });
    expect(await plain.receiveNothing()).toBe(true);
    await Promise.all([alice.disconnect(), plain.disconnect()]);
  });
});
