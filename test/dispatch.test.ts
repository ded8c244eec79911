import { Consumer, InMemoryChannelLayer, UnknownMessageType, createLogger, handlerName } from '../src';

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
