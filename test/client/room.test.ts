// Room over real sockets against a fake protocol-v2 server: last on entry, since/epoch recovery, dedup,
// a failed recovery reloading with last, presence, the url hook, and final closes.
import { WebSocket } from 'ws';
import { Room, type RoomEvents, type RoomMessage, type RoomOptions } from '../../src/client';
import { FakeChatServer } from '../support/fake-chat-server';

let server: FakeChatServer;
const rooms: Room[] = [];

beforeEach(async () => {
  server = await FakeChatServer.start();
});

afterEach(async () => {
  await Promise.all(rooms.splice(0).map((room) => room.close()));
  await server.close();
});

/** A room on the fake server, with every message and recovered event recorded. */
function join(options: Partial<RoomOptions> & { path?: string } = {}) {
  const { path = '/ws/chat/lobby/', ...rest } = options;
  const room = new Room({ url: server.url + path, WebSocket, initialDelay: 20, maxDelay: 100, ...rest });
  rooms.push(room);
  const messages: RoomMessage[] = [];
  const recovered: RoomEvents['recovered'][] = [];
  room.on('message', (message) => messages.push(message));
  room.on('recovered', (event) => recovered.push(event));
  return { room, messages, recovered, texts: () => messages.map((m) => m.message) };
}

/** The next `type` event of `room` that satisfies `test`. */
function next<K extends keyof RoomEvents>(room: Room, type: K, test: (event: RoomEvents[K]) => boolean = () => true): Promise<RoomEvents[K]> {
  return new Promise((resolve) => {
    const stop = room.on(type, (event) => {
      if (!test(event)) return;
      stop();
      resolve(event);
    });
  });
}

const opened = (room: Room) => next(room, 'state', (change) => change.state === 'open');

/** Resolves once `room` has handed `count` messages in all. */
async function received(room: Room, messages: RoomMessage[], count: number): Promise<void> {
  while (messages.length < count) await next(room, 'message');
}

test('the first connect asks last=N and keeps the app\'s own query parameters; the history arrives oldest first', async () => {
  for (let i = 1; i <= 5; i++) server.publish('lobby', `m${i}`, 'bob');
  const { room, messages, texts } = join({ path: '/ws/chat/lobby/?name=Zo%C3%AB%202&token=abc', last: 3 });
  await received(room, messages, 3);
  const asked = new URL(server.urls[0], 'http://x').searchParams;
  expect(asked.get('last')).toBe('3');
  expect(asked.get('name')).toBe('Zoë 2');
  expect(asked.get('token')).toBe('abc');
  expect(asked.has('since')).toBe(false);
  expect(texts()).toEqual(['m3', 'm4', 'm5']);
  expect(messages[0]).toMatchObject({ name: 'bob', offset: 3, epoch: server.room('lobby').epoch });
  expect(room.position).toEqual({ epoch: server.room('lobby').epoch, offset: 5 });
});

test('after a drop it reconnects with since=<offset>&epoch=<epoch>, gets what it missed in order, then recovered: true', async () => {
  const { room, messages, recovered, texts } = join({ last: 10 });
  await opened(room);
  server.publish('lobby', 'before');
  await received(room, messages, 1);
  const { epoch } = server.room('lobby');

  const reconnecting = next(room, 'state', (change) => change.state === 'reconnecting');
  server.drop();
  await reconnecting;
  server.publish('lobby', 'missed 1'); // while the client is away
  server.publish('lobby', 'missed 2');
  const back = next(room, 'recovered');
  await expect(back).resolves.toEqual({ recovered: true });
  const asked = new URL(server.urls[1], 'http://x').searchParams;
  expect([asked.get('since'), asked.get('epoch'), asked.get('last')]).toEqual(['1', epoch, null]);
  expect(texts()).toEqual(['before', 'missed 1', 'missed 2']);
  expect(recovered).toEqual([{ recovered: true }]);

  server.publish('lobby', 'live again');
  await received(room, messages, 4);
  expect(messages.map((m) => m.offset)).toEqual([1, 2, 3, 4]);
});

test('never hands an offset twice within an epoch: a replay that overlaps is cut, a new epoch passes', async () => {
  const { room, messages } = join();
  await opened(room);
  const epoch = server.room('lobby').epoch;
  server.sendRaw('lobby', { message: 'one', offset: 1, epoch });
  server.sendRaw('lobby', { message: 'two', offset: 2, epoch });
  server.sendRaw('lobby', { message: 'one again', offset: 1, epoch });
  server.sendRaw('lobby', { message: 'two again', offset: 2, epoch });
  server.sendRaw('lobby', { message: 'from Django, no offset' });
  server.sendRaw('lobby', { message: 'new epoch', offset: 1, epoch: 'other' });
  await received(room, messages, 4);
  expect(messages.map((m) => m.message)).toEqual(['one', 'two', 'from Django, no offset', 'new epoch']);
  expect(room.duplicates).toBe(2);
});

test('recovered: false is told to the app, then the room reconnects with last and shows only what it had not', async () => {
  const { room, messages, recovered, texts } = join({ last: 3 });
  await opened(room);
  server.publish('lobby', 'seen 1');
  server.publish('lobby', 'seen 2');
  await received(room, messages, 2);

  const reconnecting = next(room, 'state', (change) => change.state === 'reconnecting');
  server.drop();
  await reconnecting;
  for (let i = 1; i <= 6; i++) server.publish('lobby', `missed ${i}`);
  server.trim('lobby', 4); // offsets 3 and 4 are gone: no full recovery from offset 2

  await received(room, messages, 5);
  expect(recovered).toEqual([{ recovered: false, epoch: server.room('lobby').epoch, offset: 8, reload: true }]);
  const asked = server.urls.map((url) => new URL(url, 'http://x').search);
  expect(asked).toEqual(['?last=3', `?since=2&epoch=${server.room('lobby').epoch}`, '?last=3']);
  expect(texts()).toEqual(['seen 1', 'seen 2', 'missed 4', 'missed 5', 'missed 6']);
  expect(room.state).toBe('open');
});

test('after the room\'s history is lost (another epoch) the reload shows the new epoch\'s messages from 1', async () => {
  const { room, messages, recovered } = join({ last: 5 });
  server.publish('lobby', 'old 1');
  await received(room, messages, 1);
  const reconnecting = next(room, 'state', (change) => change.state === 'reconnecting');
  server.drop();
  await reconnecting;
  server.loseHistory('lobby');
  server.publish('lobby', 'new 1');
  await received(room, messages, 2);
  expect(recovered).toEqual([{ recovered: false, epoch: server.room('lobby').epoch, offset: 1, reload: true }]);
  expect(messages.map((m) => [m.message, m.offset])).toEqual([['old 1', 1], ['new 1', 1]]);
});

test('without last, a failed recovery goes on live from the room\'s position', async () => {
  const { room, messages, recovered } = join();
  await opened(room);
  server.publish('lobby', 'seen');
  await received(room, messages, 1);
  const reconnecting = next(room, 'state', (change) => change.state === 'reconnecting');
  server.drop();
  await reconnecting;
  server.loseHistory('lobby');
  server.publish('lobby', 'lost');
  await expect(next(room, 'recovered')).resolves.toMatchObject({ recovered: false, offset: 1, reload: false });
  server.publish('lobby', 'live');
  await received(room, messages, 2);
  expect(messages.map((m) => m.message)).toEqual(['seen', 'live']);
  expect(server.urls).toHaveLength(2); // no reload
});

test('presence: the snapshot and the diffs make a map by id; a reconnect replaces it with the new snapshot', async () => {
  const alice = join({ path: '/ws/chat/lobby/?name=alice' });
  const first = await next(alice.room, 'presence');
  expect(first.snapshot).toBe(true);
  expect([...first.members.values()].map((m) => m.name)).toEqual(['alice']);

  const bob = join({ path: '/ws/chat/lobby/?name=bob' });
  const bobJoined = await next(alice.room, 'presence');
  expect(bobJoined).toMatchObject({ snapshot: false, leaves: [] });
  expect(bobJoined.joins.map((m) => m.name)).toEqual(['bob']);
  expect([...alice.room.members.values()].map((m) => m.name).sort()).toEqual(['alice', 'bob']);

  const anonymous = join(); // no name: not a member, no presence frames
  await opened(anonymous.room);
  expect(anonymous.room.members.size).toBe(0);

  const bobLeft = next(alice.room, 'presence');
  await bob.room.close();
  await expect(bobLeft).resolves.toMatchObject({ joins: [], leaves: [{ name: 'bob' }] });
  expect([...alice.room.members.values()].map((m) => m.name)).toEqual(['alice']);

  // A reconnect: alice is a new connection (a new id); the snapshot replaces the old map.
  const before = [...alice.room.members.keys()];
  const snapshot = next(alice.room, 'presence', (change) => change.snapshot);
  server.drop();
  const after = await snapshot;
  expect([...after.members.values()].map((m) => m.name)).toEqual(['alice']);
  expect(after.leaves.map((m) => m.id)).toEqual(before);
  expect(anonymous.room.members.size).toBe(0);
});

test('the url function runs before each reconnect (a fresh token each time), and the room adds since to its URL', async () => {
  let tokens = 0;
  const { room, messages } = join({ url: async () => `${server.url}/ws/chat/lobby/?token=t${++tokens}`, last: 1 });
  await opened(room);
  server.publish('lobby', 'x');
  await received(room, messages, 1);
  for (let i = 0; i < 2; i++) {
    const back = next(room, 'recovered');
    server.drop();
    await back;
  }
  expect(tokens).toBe(3);
  const asked = server.urls.map((url) => new URL(url, 'http://x').searchParams);
  expect(asked.map((query) => query.get('token'))).toEqual(['t1', 't2', 't3']);
  expect(asked.map((query) => query.get('since'))).toEqual([null, '1', '1']);
});

test('a close the server means (4003) is final: closed by server, no further connection', async () => {
  const { room } = join();
  await opened(room);
  const closed = next(room, 'state', (change) => change.state === 'closed');
  server.closeAll(4003, 'invalid name');
  await expect(closed).resolves.toEqual({ state: 'closed', by: 'server', code: 4003, reason: 'invalid name' });
  expect(server.urls).toHaveLength(1);
  expect(room.send({ message: 'hi' })).toBe(false);
});

test('a server that stays down: maxAttempts failed retries end in closed by retries', async () => {
  const port = server.port;
  await server.close();
  const room = new Room({ url: `ws://127.0.0.1:${port}/ws/chat/lobby/`, WebSocket, initialDelay: 5, maxDelay: 10, maxAttempts: 3 });
  rooms.push(room);
  const attempts: number[] = [];
  room.on('state', (change) => {
    if (change.state === 'reconnecting') attempts.push(change.attempt);
  });
  await expect(next(room, 'state', (change) => change.state === 'closed')).resolves.toMatchObject({ by: 'retries', code: 1006 });
  expect(attempts).toEqual([1, 2, 3]);
  server = await FakeChatServer.start(); // afterEach closes one
});

test('send() reaches the room; an {"error"} frame is a frame event', async () => {
  const { room, messages } = join({ path: '/ws/chat/lobby/?name=carol' });
  await opened(room);
  const frame = next(room, 'frame');
  expect(room.send({ message: 'hello' })).toBe(true);
  expect(room.send({ nope: true })).toBe(true);
  await received(room, messages, 1);
  expect(messages[0]).toMatchObject({ message: 'hello', name: 'carol', offset: 1 });
  await expect(frame).resolves.toEqual({ error: 'expected {"message": "<text>"}' });
});
