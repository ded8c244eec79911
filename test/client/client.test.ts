// Client: the state machine, backoff timing, the url hook, final closes and close(), on fake sockets and timers.
import { Client, type ClientOptions, type StateChange } from '../../src/client';
import { fakeWebSockets } from './fake-web-socket';

/** Lets the client's promise steps (the start, the url hook) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A client on fake sockets that answer close() by themselves, unless `answerClose` is false. */
function setup(options: Partial<ClientOptions> = {}, answerClose = true) {
  const fake = fakeWebSockets(answerClose);
  const changes: StateChange[] = [];
  const client = new Client({ url: 'ws://example.test/ws/', WebSocket: fake.WebSocket, random: () => 0.5, ...options });
  client.on('state', (change) => changes.push(change));
  return { client, changes, fake, states: () => changes.map((change) => change.state) };
}

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  expect(jest.getTimerCount()).toBe(0); // every test ends with the client closed: nothing left scheduled
  jest.useRealTimers();
});

test('connects on the next microtask: connecting, then open; send works only while open', async () => {
  const { client, fake, states } = setup();
  expect(client.state).toBe('connecting');
  expect(fake.sockets).toHaveLength(0);
  await settle();
  expect(fake.sockets).toHaveLength(1);
  expect(fake.last().url).toBe('ws://example.test/ws/');
  expect(client.send({ early: true })).toBe(false);
  fake.last().open();
  expect(client.state).toBe('open');
  expect(client.send({ hello: 'world' })).toBe(true);
  expect(fake.last().sent).toEqual(['{"hello":"world"}']);
  expect(states()).toEqual(['connecting', 'open']);
  const closed = client.close();
  fake.last().closed(1000);
  await closed;
});

test('a drop goes open -> reconnecting with a delay; the next socket is made only when that delay is over', async () => {
  const { client, changes, fake } = setup({ initialDelay: 1000 });
  await settle();
  fake.last().open();
  fake.last().closed(1006);
  expect(changes.at(-1)).toEqual({ state: 'reconnecting', attempt: 1, delay: 500, code: 1006, reason: '' });
  await jest.advanceTimersByTimeAsync(499);
  expect(fake.sockets).toHaveLength(1);
  await jest.advanceTimersByTimeAsync(1);
  expect(fake.sockets).toHaveLength(2);
  fake.last().open();
  expect(client.state).toBe('open');
  await client.close();
});

test('backoff doubles per failed attempt up to maxDelay, with full jitter (delay = random() * bound)', async () => {
  const draws = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0.999];
  const { client, changes, fake } = setup({ initialDelay: 100, maxDelay: 1000, random: () => draws.shift() ?? 0.5 });
  await settle();
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    fake.last().closed(1006); // the attempt failed (a refused handshake is 1006 too)
    const change = changes.at(-1)!;
    if (change.state !== 'reconnecting') throw new Error(`expected reconnecting, got ${change.state}`);
    expect(change.attempt).toBe(i + 1);
    delays.push(change.delay);
    await jest.advanceTimersByTimeAsync(change.delay);
  }
  // Bounds 100, 200, 400, 800, then capped at 1000; 0.5 of each, then a draw of 0 and one of 0.999.
  expect(delays).toEqual([50, 100, 200, 400, 500, 500, 0, 999]);
  expect(fake.sockets).toHaveLength(9);
  await client.close();
});

test('an open socket that drops starts a new outage: the backoff starts again from initialDelay', async () => {
  const { client, changes, fake } = setup({ initialDelay: 100 });
  await settle();
  fake.last().closed(1006);
  await jest.advanceTimersByTimeAsync(50);
  fake.last().closed(1006);
  expect(changes.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 2, delay: 100 });
  await jest.advanceTimersByTimeAsync(100);
  fake.last().open();
  fake.last().closed(1001, 'server shutting down');
  expect(changes.at(-1)).toEqual({ state: 'reconnecting', attempt: 1, delay: 50, code: 1001, reason: 'server shutting down' });
  await client.close();
});

test('the url function is called before every attempt, and a new token it returns is used', async () => {
  let calls = 0;
  const { client, fake } = setup({ url: async () => `ws://example.test/ws/?token=t${++calls}` });
  await settle();
  expect(calls).toBe(1);
  expect(fake.last().url).toBe('ws://example.test/ws/?token=t1');
  fake.last().open();
  fake.last().closed(1006);
  await jest.advanceTimersByTimeAsync(1000);
  expect(calls).toBe(2);
  expect(fake.last().url).toBe('ws://example.test/ws/?token=t2');
  fake.last().closed(1006);
  await jest.advanceTimersByTimeAsync(1000);
  expect(calls).toBe(3);
  expect(fake.sockets.map((socket) => socket.url)).toEqual([1, 2, 3].map((n) => `ws://example.test/ws/?token=t${n}`));
  await client.close();
});

test('a url function that fails is an error event and a failed attempt, retried with backoff', async () => {
  let fail = true;
  const { client, changes, fake } = setup({
    url: () => {
      if (fail) throw new Error('token service down');
      return 'ws://example.test/ws/';
    },
  });
  const errors: string[] = [];
  client.on('error', (error) => errors.push(`${error.code}: ${error.message}`));
  await settle();
  expect(fake.sockets).toHaveLength(0);
  expect(errors).toEqual(['URL_FAILED: the url function failed: token service down']);
  expect(changes.at(-1)).toMatchObject({ state: 'reconnecting', attempt: 1, code: 0 });
  fail = false;
  await jest.advanceTimersByTimeAsync(1000);
  expect(fake.sockets).toHaveLength(1);
  await client.close();
});

test.each([
  [1000, 'bye'],
  [1003, 'binary frames are not accepted'],
  [1008, 'rate limit exceeded'],
  [4003, 'invalid name'],
  [4999, ''],
])('a close with %i from the server is final: closed by server, no retry, no timer', async (code, reason) => {
  const { client, changes, fake } = setup();
  await settle();
  fake.last().open();
  fake.last().closed(code, reason);
  expect(changes.at(-1)).toEqual({ state: 'closed', by: 'server', code, reason });
  expect(jest.getTimerCount()).toBe(0);
  await jest.advanceTimersByTimeAsync(60_000);
  expect(fake.sockets).toHaveLength(1);
  await client.close(); // already closed: resolves, changes nothing
  expect(changes.filter((change) => change.state === 'closed')).toHaveLength(1);
});

test.each([1001, 1006, 1007, 1009, 1011, 1012, 1013, 3000])('a close with %i is retried', async (code) => {
  const { client, changes, fake } = setup();
  await settle();
  fake.last().open();
  fake.last().closed(code);
  expect(changes.at(-1)).toMatchObject({ state: 'reconnecting', code });
  await client.close();
});

test('the retryable option decides instead of the default rule', async () => {
  const { client, changes, fake } = setup({ retryable: (code) => code === 4001 });
  await settle();
  fake.last().open();
  fake.last().closed(4001, 'token expired');
  expect(changes.at(-1)).toMatchObject({ state: 'reconnecting', code: 4001 });
  await jest.advanceTimersByTimeAsync(1000);
  fake.last().open();
  fake.last().closed(1006);
  expect(changes.at(-1)).toMatchObject({ state: 'closed', by: 'server', code: 1006 });
});

test('maxAttempts retries that fail in a row end in closed by retries', async () => {
  const { client, changes, fake } = setup({ maxAttempts: 2 });
  await settle();
  fake.last().closed(1006); // the first connect
  await jest.advanceTimersByTimeAsync(10_000);
  fake.last().closed(1006); // retry 1
  await jest.advanceTimersByTimeAsync(10_000);
  fake.last().closed(1006, 'still down'); // retry 2
  expect(fake.sockets).toHaveLength(3);
  expect(changes.at(-1)).toEqual({ state: 'closed', by: 'retries', code: 1006, reason: 'still down' });
  expect(client.state).toBe('closed');
});

test('never two sockets at once: reconnect() closes the open socket and attempts only after its close event', async () => {
  let calls = 0;
  const { client, changes, fake } = setup({ url: () => `ws://example.test/ws/?n=${++calls}` }, false);
  await settle();
  fake.last().open();
  client.reconnect();
  expect(fake.sockets[0].closeCalledWith).toEqual({ code: 1000, reason: 'reconnecting' });
  await settle();
  expect(fake.sockets).toHaveLength(1); // the old socket has not closed yet
  fake.sockets[0].closed(1000, 'reconnecting');
  await settle();
  expect(fake.sockets).toHaveLength(2);
  expect(fake.last().url).toBe('ws://example.test/ws/?n=2');
  expect(changes.at(-1)).toEqual({ state: 'reconnecting', attempt: 1, delay: 0, code: 1000, reason: 'reconnecting' });
  fake.last().open();
  // An event of the old socket after it is replaced changes nothing.
  fake.sockets[0].receive('{"stale": true}');
  expect(client.state).toBe('open');
  const closing = client.close();
  fake.last().closed(1000);
  await closing;
});

test('reconnect() while waiting to retry retries at once', async () => {
  const { client, fake } = setup({ initialDelay: 5000 });
  await settle();
  fake.last().closed(1006);
  client.reconnect();
  await settle();
  expect(fake.sockets).toHaveLength(2);
  await client.close();
});

test('an attempt that does not open within connectTimeout is closed, and retried once its close event came', async () => {
  const { client, changes, fake } = setup({ connectTimeout: 3000 }, false);
  await settle();
  await jest.advanceTimersByTimeAsync(2999);
  expect(fake.last().closeCalledWith).toBeNull();
  await jest.advanceTimersByTimeAsync(1);
  expect(fake.last().closeCalledWith).not.toBeNull();
  expect(fake.sockets).toHaveLength(1);
  fake.last().closed(1006);
  expect(changes.at(-1)).toMatchObject({ state: 'reconnecting', code: 1006, reason: 'no answer within 3000 ms' });
  await client.close();
});

test('a text frame is parsed as JSON; one that is not JSON, or a binary one, is an error event and the socket stays', async () => {
  const { client, fake } = setup();
  const messages: unknown[] = [];
  const errors: string[] = [];
  client.on('message', (value) => messages.push(value));
  client.on('error', (error) => errors.push(error.code));
  await settle();
  fake.last().open();
  fake.last().receive('{"message": "hi", "offset": 1}');
  fake.last().receive('not json');
  fake.last().receive(new Uint8Array([1, 2]));
  fake.last().receive('[1, 2]');
  expect(messages).toEqual([{ message: 'hi', offset: 1 }, [1, 2]]);
  expect(errors).toEqual(['INVALID_FRAME', 'INVALID_FRAME']);
  expect(client.state).toBe('open');
  await client.close();
});

test('close() while open: closed by app at once, resolves after the socket close event, no timers', async () => {
  const { client, changes, fake } = setup({}, false);
  await settle();
  fake.last().open();
  let resolved = false;
  const closing = client.close(4000, 'leaving').then(() => (resolved = true));
  expect(changes.at(-1)).toEqual({ state: 'closed', by: 'app', code: 4000, reason: 'leaving' });
  expect(fake.last().closeCalledWith).toEqual({ code: 4000, reason: 'leaving' });
  await settle();
  expect(resolved).toBe(false);
  fake.last().closed(4000, 'leaving');
  await closing;
  expect(resolved).toBe(true);
  expect(client.send({})).toBe(false);
});

test('close() while waiting to retry cancels the retry: no timer, no socket afterwards', async () => {
  const { client, fake } = setup();
  await settle();
  fake.last().closed(1006);
  expect(jest.getTimerCount()).toBe(1);
  await client.close();
  expect(jest.getTimerCount()).toBe(0);
  await jest.advanceTimersByTimeAsync(60_000);
  expect(fake.sockets).toHaveLength(1);
});

test('close() while connecting (connect timer running) clears it and closes the socket', async () => {
  const { client, fake } = setup();
  await settle();
  expect(jest.getTimerCount()).toBe(1); // connectTimeout
  const closing = client.close();
  expect(jest.getTimerCount()).toBe(0);
  expect(fake.last().closeCalledWith).toEqual({ code: 1000, reason: '' });
  fake.last().closed(1006);
  await closing;
});

test('close() while the url function runs: its result is ignored and no socket is made', async () => {
  let release: (url: string) => void = () => {};
  const { client, fake } = setup({ url: () => new Promise<string>((resolve) => (release = resolve)) });
  await settle();
  await client.close();
  release('ws://example.test/ws/');
  await settle();
  expect(fake.sockets).toHaveLength(0);
  expect(client.state).toBe('closed');
});

test('close() before the first attempt: no socket, no connecting event', async () => {
  const { client, fake, states } = setup();
  await client.close();
  await settle();
  expect(fake.sockets).toHaveLength(0);
  expect(states()).toEqual(['closed']);
});

test('without a WebSocket class (Node 20 has no global one) the constructor says what to pass', () => {
  const global = globalThis as { WebSocket?: unknown };
  const saved = global.WebSocket;
  delete global.WebSocket;
  try {
    expect(() => new Client({ url: 'ws://example.test/' })).toThrow(/options\.WebSocket/);
  } finally {
    if (saved !== undefined) global.WebSocket = saved;
  }
});

test('a relative path needs a page to resolve against: outside a browser it is a SOCKET_FAILED error, retried', async () => {
  const { client, fake } = setup({ url: '/ws/chat/lobby/' });
  const errors: string[] = [];
  client.on('error', (error) => errors.push(error.code));
  await settle();
  expect(fake.sockets).toHaveLength(0);
  expect(errors).toEqual(['SOCKET_FAILED']);
  await client.close();
});

test("in a browser, the page's 'online' event retries at once; close() stops listening to it", async () => {
  const global = globalThis as { addEventListener?: unknown; removeEventListener?: unknown };
  const listeners = new Set<() => void>();
  global.addEventListener = (type: string, listener: () => void) => type === 'online' && listeners.add(listener);
  global.removeEventListener = (type: string, listener: () => void) => type === 'online' && listeners.delete(listener);
  try {
    const { client, fake } = setup({ initialDelay: 60_000 });
    expect(listeners.size).toBe(1);
    await settle();
    fake.last().closed(1006);
    for (const listener of listeners) listener();
    await settle();
    expect(fake.sockets).toHaveLength(2);
    await client.close();
    expect(listeners.size).toBe(0);
  } finally {
    delete global.addEventListener;
    delete global.removeEventListener;
  }
});
