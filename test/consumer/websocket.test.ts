import { InMemoryChannelLayer, JsonWebsocketConsumer, type LayerMessage, URLRouter, WebsocketConsumer, path } from '../../src';
import { WebsocketCommunicator } from '../../src/testing';
import { memoryLogger } from '../support/logs';

class Echo extends WebsocketConsumer {
  static override groups = ['echoes'];
  override receive(data: string | Buffer): void {
    this.send(typeof data === 'string' ? `echo:${data}` : data);
  }
  announce(event: LayerMessage): void {
    this.send(`announce:${String(event.text)}`);
  }
}

class JsonEcho extends JsonWebsocketConsumer {
  override receiveJson(value: unknown): void {
    this.sendJson({ got: value });
  }
}

class Refuser extends WebsocketConsumer {
  override connect(): void {
    this.close(4001);
  }
}

class Picky extends WebsocketConsumer {
  override connect(): void {
    this.accept(this.scope.subprotocols.includes('v2') ? 'v2' : undefined);
  }
}

class Broken extends WebsocketConsumer {
  override receive(data: string | Buffer): void {
    if (data === 'boom') throw new Error('handler failed');
    this.send(`ok:${String(data)}`);
  }
}

const log: string[] = [];
class Ordered extends WebsocketConsumer {
  override async receive(data: string | Buffer): Promise<void> {
    // A slow first frame must not let the second overtake it.
    if (data === 'slow') await new Promise((resolve) => setTimeout(resolve, 50));
    log.push(String(data));
    this.send(String(data));
  }
  override disconnect(code: number): void {
    log.push(`disconnect:${code}`);
  }
}

describe('WebsocketConsumer through WebsocketCommunicator', () => {
  test('accepts by default and echoes text and binary frames', async () => {
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/echo/', Echo)]), '/ws/echo/');
    expect(await communicator.connect()).toEqual({ connected: true, subprotocol: undefined });
    communicator.sendTo('hi');
    expect(await communicator.receiveFrom()).toBe('echo:hi');
    communicator.sendTo(Buffer.from([1, 2, 3]));
    expect(await communicator.receiveFrom()).toEqual(Buffer.from([1, 2, 3]));
    expect(await communicator.receiveNothing()).toBe(true);
    await communicator.disconnect();
  });

  test('joins static groups on connect, receives group events by type, leaves on disconnect', async () => {
    const layer = new InMemoryChannelLayer();
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/echo/', Echo)]), '/ws/echo/', { channelLayer: layer });
    await communicator.connect();
    await layer.groupSend('echoes', { type: 'announce', text: 'hello' });
    expect(await communicator.receiveFrom()).toBe('announce:hello');
    await communicator.disconnect();
    await layer.groupSend('echoes', { type: 'announce', text: 'after' });
    expect(await communicator.receiveNothing()).toBe(true);
    await layer.close();
  });

  test('closing before accept refuses the handshake with 403', async () => {
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/no/', Refuser)]), '/ws/no/');
    expect(await communicator.connect()).toEqual({ connected: false, status: 403 });
    await communicator.disconnect();
  });

  test('no route gives 404', async () => {
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/no/', Refuser)]), '/ws/elsewhere/');
    expect(await communicator.connect()).toEqual({ connected: false, status: 404 });
    await communicator.disconnect();
  });

  test('accept(subprotocol) picks an offered subprotocol', async () => {
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/p/', Picky)]), '/ws/p/', { subprotocols: ['v1', 'v2'] });
    expect(await communicator.connect()).toEqual({ connected: true, subprotocol: 'v2' });
    await communicator.disconnect();
  });

  test('a throwing handler closes that consumer with 1011 and nothing else', async () => {
    const app = URLRouter([path('ws/b/', Broken)]);
    const broken = new WebsocketCommunicator(app, '/ws/b/');
    const healthy = new WebsocketCommunicator(app, '/ws/b/');
    await broken.connect();
    await healthy.connect();
    broken.sendTo('boom');
    expect(await broken.receiveClose()).toBe(1011);
    healthy.sendTo('still');
    expect(await healthy.receiveFrom()).toBe('ok:still');
    await broken.disconnect();
    await healthy.disconnect();
  });

  test('an event type with no handler closes with 1011', async () => {
    const layer = new InMemoryChannelLayer();
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/echo/', Echo)]), '/ws/echo/', { channelLayer: layer });
    await communicator.connect();
    await layer.groupSend('echoes', { type: 'no.such.handler' });
    expect(await communicator.receiveClose()).toBe(1011);
    await communicator.disconnect();
    await layer.close();
  });

  test('frames are handled one at a time, in order, and disconnect comes last', async () => {
    log.length = 0;
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/o/', Ordered)]), '/ws/o/');
    await communicator.connect();
    communicator.sendTo('slow');
    communicator.sendTo('fast');
    expect(await communicator.receiveFrom()).toBe('slow');
    expect(await communicator.receiveFrom()).toBe('fast');
    await communicator.disconnect(4321);
    expect(log).toEqual(['slow', 'fast', 'disconnect:4321']);
  });
});

describe('JsonWebsocketConsumer', () => {
  const app = URLRouter([path('ws/json/', JsonEcho)]);

  test('parses text frames as JSON', async () => {
    const communicator = new WebsocketCommunicator(app, '/ws/json/');
    await communicator.connect();
    communicator.sendJsonTo({ a: [1, 'b'] });
    expect(await communicator.receiveJsonFrom()).toEqual({ got: { a: [1, 'b'] } });
    await communicator.disconnect();
  });

  test('invalid JSON closes with 1007', async () => {
    const communicator = new WebsocketCommunicator(app, '/ws/json/');
    await communicator.connect();
    communicator.sendTo('{not json');
    expect(await communicator.receiveClose()).toBe(1007);
    await communicator.disconnect();
  });

  test('a binary frame closes with 1003', async () => {
    const communicator = new WebsocketCommunicator(app, '/ws/json/');
    await communicator.connect();
    communicator.sendTo(Buffer.from('{}'));
    expect(await communicator.receiveClose()).toBe(1003);
    await communicator.disconnect();
  });

  test('a __proto__ key in a frame does not pollute prototypes', async () => {
    const communicator = new WebsocketCommunicator(app, '/ws/json/');
    await communicator.connect();
    communicator.sendTo('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}');
    await communicator.receiveJsonFrom();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await communicator.disconnect();
  });
});

/** The in-memory layer, recording what consumers ask of it: memberships as groupAdd and groupDiscard left them. */
class MembershipLayer extends InMemoryChannelLayer {
  readonly members = new Map<string, Set<string>>();
  override async groupAdd(group: string, channel: string): Promise<void> {
    await super.groupAdd(group, channel);
    if (!this.members.has(group)) this.members.set(group, new Set());
    this.members.get(group)!.add(channel);
  }
  override async groupDiscard(group: string, channel: string): Promise<void> {
    await super.groupDiscard(group, channel);
    this.members.get(group)?.delete(channel);
    if (this.members.get(group)?.size === 0) this.members.delete(group);
  }
}

/** Joins and leaves groups on request: 'join:g', 'leave:g'; relays `note` events. */
class Member extends WebsocketConsumer {
  static override groups = ['static'];
  override async receive(data: string | Buffer): Promise<void> {
    const [verb, group] = String(data).split(':');
    if (verb === 'join') await this.groupAdd(group);
    if (verb === 'leave') await this.groupDiscard(group);
    this.send(`done:${String(data)}`);
  }
  note(event: LayerMessage): void {
    this.send(`note:${String(event.group)}`);
  }
}

describe('group membership of a consumer', () => {
  test('groups joined one, two and three at a time, left one by one, and the rest at disconnect', async () => {
    const layer = new MembershipLayer();
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/member/', Member)]), '/ws/member/', { channelLayer: layer });
    await communicator.connect();
    const notes = async (): Promise<string[]> => {
      for (const group of ['static', 'alpha', 'beta']) await layer.groupSend(group, { type: 'note', group });
      const seen: string[] = [];
      for (;;) {
        const frame = await communicator.receiveFrom(100).catch(() => null);
        if (frame === null) return seen;
        seen.push(String(frame));
      }
    };
    expect(await notes()).toEqual(['note:static']);
    for (const step of ['join:alpha', 'join:beta', 'join:alpha']) {
      communicator.sendTo(step);
      expect(await communicator.receiveFrom()).toBe(`done:${step}`);
    }
    expect(await notes()).toEqual(['note:static', 'note:alpha', 'note:beta']);
    for (const step of ['leave:static', 'leave:alpha']) {
      communicator.sendTo(step);
      expect(await communicator.receiveFrom()).toBe(`done:${step}`);
    }
    expect(await notes()).toEqual(['note:beta']);
    await communicator.disconnect();
    // Nothing left behind: a group send finds no member.
    const probe = await layer.newChannel();
    await layer.groupAdd('beta', probe);
    await layer.groupSend('beta', { type: 'note', group: 'beta' });
    expect(await layer.receive(probe)).toEqual({ type: 'note', group: 'beta' });
    expect([...layer.members].map(([group, channels]) => [group, channels.size])).toEqual([['beta', 1]]);
    await layer.close();
  });
});

/** A layer whose leave of one group fails, as Redis can while the consumer ends. */
class LeaveFailsLayer extends MembershipLayer {
  override async groupDiscard(group: string, channel: string): Promise<void> {
    if (group === 'static') throw new Error('leave failed');
    await super.groupDiscard(group, channel);
  }
}

describe('leaving groups at the end', () => {
  test.each([
    ['in one group (its static one)', []],
    ['in three groups', ['join:alpha', 'join:beta']],
  ])('%s: every leave is tried, a failed one is logged, and disconnect completes', async (_name, steps) => {
    const layer = new LeaveFailsLayer();
    const { logger, lines } = memoryLogger();
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/member/', Member)]), '/ws/member/', { channelLayer: layer, logger });
    await communicator.connect();
    for (const step of steps) {
      communicator.sendTo(step);
      expect(await communicator.receiveFrom()).toBe(`done:${step}`);
    }
    await communicator.disconnect();
    // The static group's leave failed; the others were left all the same.
    expect([...layer.members.keys()]).toEqual(['static']);
    const failures = lines().filter((line) => line.msg === 'could not leave group');
    expect(failures.map((line) => (line.err as { message: string }).message)).toEqual(['leave failed']);
    await layer.close();
  });
});

describe('a teardown that throws', () => {
  test('still leaves its groups and ends the connection: closed() resolves, so the server stops counting it; the failure is logged', async () => {
    class UnlistenFails extends InMemoryChannelLayer {
      readonly left: string[] = [];
      override unlisten(): void {
        throw new Error('unlisten failed');
      }
      override groupDiscard(group: string, channel: string): Promise<void> {
        this.left.push(group);
        return super.groupDiscard(group, channel);
      }
    }
    const layer = new UnlistenFails();
    const { logger, lines } = memoryLogger();
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/member/', Member)]), '/ws/member/', { channelLayer: layer, logger });
    await communicator.connect();
    const ended = await Promise.race([communicator.disconnect().then(() => 'ended'), new Promise((resolve) => setTimeout(resolve, 2000, 'hung'))]);
    expect(ended).toBe('ended');
    // A layer that cannot stop listening must not keep the consumer in its groups (the layer would hold them forever).
    expect(layer.left).toEqual(['static']);
    expect(lines().some((line) => (line.err as { message?: string } | undefined)?.message === 'unlisten failed')).toBe(true);
    await layer.close();
  });
});

class FailsAfterAccept extends WebsocketConsumer {
  static disconnects: number[] = [];
  override async connect(): Promise<void> {
    await this.groupAdd('failing');
    this.accept();
    throw new Error('connect failed after accept');
  }
  override disconnect(code: number): void {
    FailsAfterAccept.disconnects.push(code);
  }
}

describe('connect() that throws', () => {
  test('after accept(): connected, then close 1011; disconnect runs and its groups are left', async () => {
    FailsAfterAccept.disconnects = [];
    const layer = new MembershipLayer();
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/f/', FailsAfterAccept)]), '/ws/f/', { channelLayer: layer });
    expect(await communicator.connect()).toMatchObject({ connected: true });
    expect(await communicator.receiveClose()).toBe(1011);
    await communicator.disconnect();
    expect(FailsAfterAccept.disconnects).toEqual([1011]);
    expect(layer.members.has('failing')).toBe(false);
    await layer.close();
  });

  test('before accept(): a refused handshake (500)', async () => {
    class FailsBeforeAccept extends WebsocketConsumer {
      override connect(): void {
        throw new Error('connect failed');
      }
    }
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/f/', FailsBeforeAccept)]), '/ws/f/');
    expect(await communicator.connect()).toEqual({ connected: false, status: 500 });
    await communicator.disconnect();
  });
});

describe('sendJson with a value that has no JSON form', () => {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const values: Record<string, unknown> = {
    undefined: undefined,
    function: () => 1,
    symbol: Symbol('s'),
    bigint: 10n,
    cycle,
  };
  class Sender extends WebsocketConsumer {
    override receive(data: string | Buffer): void {
      try {
        this.sendJson(values[String(data)]);
        this.send('sent');
      } catch (error) {
        this.send(`${(error as Error).name}: ${(error as Error).message}`);
      }
    }
  }

  test.each(Object.keys(values))('%s: a TypeError naming sendJson and what was given, nothing sent', async (name) => {
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/s/', Sender)]), '/ws/s/');
    await communicator.connect();
    communicator.sendTo(name);
    const answer = String(await communicator.receiveFrom());
    expect(answer).toMatch(/^TypeError: sendJson/);
    expect(answer).toContain(name === 'cycle' ? 'circular' : name);
    expect(await communicator.receiveNothing()).toBe(true);
    await communicator.disconnect();
  });
});

describe('accept({ subprotocol, headers })', () => {
  class WithHeaders extends WebsocketConsumer {
    override connect(): void {
      this.accept({ subprotocol: 'v2', headers: { 'X-Server': 'channelkit', 'Set-Cookie': 'a=1' } });
    }
  }

  test('the communicator reports the subprotocol and the extra headers', async () => {
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/h/', WithHeaders)]), '/ws/h/', { subprotocols: ['v2'] });
    expect(await communicator.connect()).toEqual({
      connected: true,
      subprotocol: 'v2',
      headers: [
        ['X-Server', 'channelkit'],
        ['Set-Cookie', 'a=1'],
      ],
    });
    await communicator.disconnect();
  });

  test('header names and values that are invalid or would break the handshake are refused with a TypeError', async () => {
    const refused: string[] = [];
    const bad: [string, string][] = [
      ['Upgrade', 'h2c'],
      ['connection', 'close'],
      ['Sec-WebSocket-Accept', 'x'],
      ['sec-websocket-protocol', 'v9'],
      ['Content-Length', '5'],
      ['Bad Name', 'x'],
      ['X-Split', 'a\r\nInjected: yes'],
    ];
    class Careful extends WebsocketConsumer {
      override connect(): void {
        for (const header of bad) {
          try {
            this.accept({ headers: [header] });
          } catch (error) {
            if (error instanceof TypeError && error.message.startsWith('accept:')) refused.push(header[0]);
          }
        }
        this.accept({ headers: [['X-Fine', 'yes']] });
      }
    }
    const communicator = new WebsocketCommunicator(URLRouter([path('ws/c/', Careful)]), '/ws/c/');
    expect(await communicator.connect()).toEqual({ connected: true, subprotocol: undefined, headers: [['X-Fine', 'yes']] });
    expect(refused).toEqual(bad.map(([name]) => name));
    await communicator.disconnect();
  });
});
