// Room on fake sockets: the exact order of frames around a failed recovery, which a live server cannot pin down.
import { Room, type RoomMessage } from '../../src/client';
import { fakeWebSockets } from './fake-web-socket';

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  expect(jest.getTimerCount()).toBe(0);
  jest.useRealTimers();
});

const frame = (offset: number, epoch = 'a') => JSON.stringify({ message: `m${offset}`, offset, epoch, time: 1 });

test('a live message on the old socket after recovered: false neither shows nor hides the reload\'s messages', async () => {
  const fake = fakeWebSockets();
  const room = new Room({ url: 'ws://example.test/ws/chat/r/?name=a', WebSocket: fake.WebSocket, last: 3, random: () => 0 });
  const messages: RoomMessage[] = [];
  room.on('message', (message) => messages.push(message));
  await jest.advanceTimersByTimeAsync(0);
  expect(new URL(fake.last().url).search).toBe('?name=a&last=3');
  fake.last().open();
  fake.last().receive(frame(1));
  fake.last().receive(frame(2));
  fake.last().closed(1006);
  await jest.advanceTimersByTimeAsync(0);

  expect(new URL(fake.last().url).search).toBe('?name=a&since=2&epoch=a');
  fake.last().open();
  fake.last().receive(JSON.stringify({ type: 'recovered', recovered: false, epoch: 'a', offset: 8 }));
  fake.last().receive(frame(9)); // live, before the room's close reaches the server
  expect(fake.last().closeCalledWith).toEqual({ code: 1000, reason: 'reconnecting' });
  await jest.advanceTimersByTimeAsync(0);

  expect(fake.sockets).toHaveLength(3);
  expect(new URL(fake.last().url).search).toBe('?name=a&last=3');
  fake.last().open();
  for (const offset of [7, 8, 9]) fake.last().receive(frame(offset));
  expect(messages.map((message) => message.offset)).toEqual([1, 2, 7, 8, 9]);

  // Once reloaded, the next reconnect recovers from the reload's last message again.
  fake.last().closed(1006);
  await jest.advanceTimersByTimeAsync(0);
  expect(new URL(fake.last().url).search).toBe('?name=a&since=9&epoch=a');
  await room.close();
});
