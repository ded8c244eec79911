import {
  ChannelNameRouter,
  Consumer,
  type ConsumerClass,
  InMemoryChannelLayer,
  JsonWebsocketConsumer,
  type LayerMessage,
  type Logger,
  type Scope,
  URLRouter,
  UnknownMessageType,
  WebsocketConsumer,
  Worker,
  createLogger,
  handlerName,
  path,
} from '../../src';
import pino from 'pino';
import { UnknownTypeLog } from '../../src/consumer/dispatch';
import { WebsocketCommunicator } from '../../src/testing';
import { until } from '../support/wait';

describe('handlerName', () => {
  test.each([
    ['chat.message', 'chatMessage'],
    ['chat_message', 'chatMessage'],
    ['notification.message', 'notificationMessage'],
    ['user_joined.now', 'userJoinedNow'],
    ['ping', 'ping'],
  ])('%s -> %s', (type, name) => expect(handlerName(type)).toBe(name));

  test.each(['', '.x', 'x.', 'a..b', '1abc', 'has space', '__proto__', 'a-b'])('refuses %j', (type) => {
    expect(handlerName(type)).toBeNull();
  });
});

class Example extends Consumer {
  seen: unknown[] = [];
  chatMessage(message: { type: string }): void {
    this.seen.push(message);
  }
}

describe('Consumer.dispatch', () => {
  const layer = new InMemoryChannelLayer();
  const consumer = new Example({ channelLayer: layer, logger: createLogger('silent') });
  afterAll(() => layer.close());

  test('calls the method the type names', () => {
    consumer.dispatch({ type: 'chat.message', text: 'x' });
    expect(consumer.seen).toEqual([{ type: 'chat.message', text: 'x' }]);
  });

  test('an unknown type is an UnknownMessageType naming the method to define', () => {
    expect(() => consumer.dispatch({ type: 'chat.edit' })).toThrow(UnknownMessageType);
    expect(() => consumer.dispatch({ type: 'chat.edit' })).toThrow(/define a method chatEdit\(message\)/);
  });

  test('a type can never reach framework methods or Object.prototype', () => {
    for (const type of ['group.add', 'group_send', 'dispatch', 'constructor', 'to.string', 'has_own_property']) {
      expect(() => consumer.dispatch({ type })).toThrow(UnknownMessageType);
    }
  });

  test('a non-string type is refused clearly', () => {
    expect(() => consumer.dispatch({ type: 5 } as unknown as { type: string })).toThrow(/type must be a string/);
  });
});

/** Frames a communicator got before its close, and the close code. */
async function framesUntilClose(communicator: WebsocketCommunicator, timeoutMs = 2000): Promise<{ frames: number; code: number }> {
  let frames = 0;
  for (;;) {
    try {
      return { frames, code: await communicator.receiveClose(timeoutMs) };
    } catch (error) {
      if (!/got a frame/.test((error as Error).message)) throw error;
      frames++;
    }
  }
}

/** `count` connected communicators of `cls` sharing `layer`. */
async function members(cls: ConsumerClass, layer: InMemoryChannelLayer, count: number, logger?: Logger): Promise<WebsocketCommunicator[]> {
  const app = URLRouter([path('ws/members/', cls)]);
  const all = Array.from({ length: count }, () => new WebsocketCommunicator(app, '/ws/members/', { channelLayer: layer, logger }));
  for (const communicator of all) expect(await communicator.connect()).toMatchObject({ connected: true });
  return all;
}

let connects = 0;
/** The app overrides the lifecycle (connect, receiveJson), so the framework-prototype rule alone does not protect them. */
class Room extends JsonWebsocketConsumer {
  static override groups = ['room'];
  override connect(): void {
    connects++;
    this.accept();
  }
  override receiveJson(value: unknown): void {
    void this.groupSend('room', { ...(value as object), type: 'chat.message' });
  }
  override disconnect(): void {}
  chatMessage(message: LayerMessage): void {
    this.sendJson({ message: message.message });
  }
}

describe('layer events never reach lifecycle or framework methods', () => {
  let layer: InMemoryChannelLayer;
  beforeEach(() => {
    layer = new InMemoryChannelLayer();
    connects = 0;
  });
  afterEach(() => layer.close());

  test('a group send of {type: "connect"} does not re-run connect(): each member closes with 1011', async () => {
    const room = await members(Room, layer, 20);
    expect(connects).toBe(20);
    await layer.groupSend('room', { type: 'connect' });
    const results = await Promise.all(room.map((member) => framesUntilClose(member)));
    expect(connects).toBe(20);
    expect(results).toEqual(room.map(() => ({ frames: 0, code: 1011 })));
  });

  test('a group send of {type: "receive.json"} is not re-broadcast (no 400 frames): each member closes with 1011', async () => {
    const room = await members(Room, layer, 20);
    await layer.groupSend('room', { type: 'receive.json', message: 'again' });
    const results = await Promise.all(room.map((member) => framesUntilClose(member)));
    expect(results.reduce((sum, result) => sum + result.frames, 0)).toBe(0);
    expect(results.every((result) => result.code === 1011)).toBe(true);
  });

  test('no lifecycle or framework name is a handler, even when the app overrides it', async () => {
    class Overrides extends JsonWebsocketConsumer {
      override receiveJson(): void {}
      override disconnect(): void {}
      override send(data: string | Buffer): void {
        super.send(data);
      }
      override groupSend(group: string, message: LayerMessage): Promise<void> {
        return super.groupSend(group, message);
      }
      websocketConnect(): void {}
      websocketReceive(): void {}
      receiveBytes(): void {}
      receivedAck(): void {}
    }
    const consumer = new Overrides(
      { path: '/', params: {} } as unknown as Scope,
      { channelLayer: layer, logger: createLogger('silent') },
    );
    const refused = [
      'connect', 'disconnect', 'receive', 'receive.json', 'receive_json', 'receive.bytes', 'websocket.connect',
      'websocket.receive', 'open', 'frame', 'closed', 'accept', 'close', 'send', 'send_json', 'group.add',
      'group_send', 'group.discard', 'dispatch', 'handle_mailbox_item', 'mailbox.error', 'to.string',
    ];
    for (const type of refused) expect(() => consumer.dispatch({ type })).toThrow(UnknownMessageType);
    // A word that only begins like a lifecycle name is the app's own handler.
    expect(() => consumer.dispatch({ type: 'received.ack' })).not.toThrow();
  });
});

/** A pino logger that keeps every line it writes. */
function capturingLogger(): { logger: Logger; lines: string[]; bytes: () => number } {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines, bytes: () => lines.reduce((sum, line) => sum + Buffer.byteLength(line), 0) };
}

describe('unknown types are logged once per type and minute, truncated', () => {
  let layer: InMemoryChannelLayer;
  beforeEach(() => (layer = new InMemoryChannelLayer()));
  afterEach(() => layer.close());

  test('one event with a 98 KiB type to 200 members writes under 20 KiB of log; every member closes with 1011', async () => {
    class Crowd extends WebsocketConsumer {
      static override groups = ['crowd'];
    }
    const { logger, lines, bytes } = capturingLogger();
    const crowd = await members(Crowd, layer, 200, logger);
    const type = 'x'.repeat(98 * 1024);
    await layer.groupSend('crowd', { type });
    const results = await Promise.all(crowd.map((member) => framesUntilClose(member)));
    expect(results.every((result) => result.code === 1011 && result.frames === 0)).toBe(true);
    expect(bytes()).toBeLessThan(20 * 1024);
    const logged = lines.filter((line) => line.includes('UnknownMessageType'));
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0]).err.message).toBe(
      `Crowd cannot handle message type "${'x'.repeat(100)}…" (${98 * 1024} characters): no handler has a name that long`,
    );
  });
});

describe('UnknownTypeLog', () => {
  const error = () => new UnknownMessageType('t', 'C', 'r');

  test('logs the first of each type per window and counts the rest for the next logged one', () => {
    const log = new UnknownTypeLog(60_000, 100);
    const first = error();
    log.admit(first, 'a.b', 0);
    expect([first.log, first.suppressed]).toEqual([true, 0]);
    const repeats = [error(), error(), error()];
    for (const repeat of repeats) log.admit(repeat, 'a.b', 1000);
    expect(repeats.map((repeat) => repeat.log)).toEqual([false, false, false]);
    const other = error();
    log.admit(other, 'c.d', 2000);
    expect([other.log, other.suppressed]).toEqual([true, 3]);
    const nextMinute = error();
    log.admit(nextMinute, 'a.b', 60_000);
    expect([nextMinute.log, nextMinute.suppressed]).toEqual([true, 0]);
  });

  test('long types are keyed by their start and length; at most maxTypes types per window', () => {
    const log = new UnknownTypeLog(60_000, 2);
    const [a, b, c] = [error(), error(), error()];
    log.admit(a, 'x'.repeat(500), 0);
    log.admit(b, 'x'.repeat(500), 0);
    log.admit(c, 'x'.repeat(501), 0);
    expect([a.log, b.log, c.log]).toEqual([true, false, true]);
    const beyond = error();
    log.admit(beyond, 'y', 0);
    expect(beyond.log).toBe(false);
  });
});

test('an error message quotes at most 100 characters of a type, and never a non-string one', () => {
  expect(new UnknownMessageType('a'.repeat(5000), 'C', 'r').message).toBe(`C cannot handle message type "${'a'.repeat(100)}…" (5000 characters): r`);
  expect(new UnknownMessageType({ big: 'z'.repeat(5000) }, 'C', 'r').message).toBe('C cannot handle message type (an object): r');
  expect(new UnknownMessageType(['z'.repeat(5000)], 'C', 'r').message).toBe('C cannot handle message type (an array): r');
});

describe('a layer message without type reaches no handler', () => {
  let layer: InMemoryChannelLayer;
  beforeEach(() => (layer = new InMemoryChannelLayer()));
  afterEach(() => layer.close());

  test('dispatch throws UnknownMessageType "message has no type"', () => {
    const consumer = new Example({ channelLayer: layer, logger: createLogger('silent') });
    expect(() => consumer.dispatch({ a: true })).toThrow(UnknownMessageType);
    expect(() => consumer.dispatch({ a: true })).toThrow('Example cannot handle message type (none): message has no type');
  });

  test('group-sent to 20 members: each closes with 1011, logged once', async () => {
    class Typeless extends WebsocketConsumer {
      static override groups = ['typeless'];
    }
    const { logger, lines } = capturingLogger();
    const all = await members(Typeless, layer, 20, logger);
    await layer.groupSend('typeless', { a: 1 });
    const results = await Promise.all(all.map((member) => framesUntilClose(member)));
    expect(results).toEqual(all.map(() => ({ frames: 0, code: 1011 })));
    const logged = lines.map((line) => JSON.parse(line)).filter((line) => line.err?.code === 'UNKNOWN_MESSAGE_TYPE');
    expect(logged.map((line) => line.err.message)).toEqual(['Typeless cannot handle message type (none): message has no type']);
  });

  test('sent to a worker: logged, and the worker goes on with the next message', async () => {
    const handled: unknown[] = [];
    class Jobs extends Consumer {
      jobsRun(message: LayerMessage): void {
        handled.push(message.id);
      }
    }
    const { logger, lines } = capturingLogger();
    const worker = new Worker({ channelLayer: layer, logger }, { router: new ChannelNameRouter({ 'jobs.run': Jobs }) });
    worker.start();
    await layer.send('jobs.run', { id: 1 });
    await layer.send('jobs.run', { type: 'jobs.run', id: 2 });
    await until(() => handled.length === 1, 2000, 'the typed job');
    await worker.close();
    expect(handled).toEqual([2]);
    const failed = lines.map((line) => JSON.parse(line)).filter((line) => line.msg === 'worker handler failed');
    expect(failed.map((line) => line.err.message)).toEqual(['Jobs cannot handle message type (none): message has no type']);
  });
});
