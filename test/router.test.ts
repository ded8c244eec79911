import { HandshakeRejected, InMemoryChannelLayer, type Connection, type Runtime, type Scope, URLRouter, createLogger, path } from '../src';

function scopeFor(rawPath: string): Scope {
  return {
    type: 'websocket', path: decodeURIComponent(rawPath), pathRemaining: rawPath, params: {}, route: '',
    query: new URLSearchParams(), headers: {}, client: { address: '127.0.0.1', port: 1 }, subprotocols: [], user: null, state: {},
  };
}

/** An application that records the scope it was given. */
function recorder(seen: Scope[]) {
  return async (scope: Scope): Promise<Connection> => {
    seen.push(scope);
    return { scope, open: async () => undefined, frame: () => undefined, closed: async () => undefined };
  };
}

const layer = new InMemoryChannelLayer();
const runtime: Runtime = { channelLayer: layer, logger: createLogger('silent') };
afterAll(() => layer.close());

describe('path and URLRouter', () => {
  test('matches a pattern with a named parameter and puts it in scope.params', async () => {
    const seen: Scope[] = [];
    await URLRouter([path('ws/chat/:room/', recorder(seen))])(scopeFor('/ws/chat/lobby/'), runtime);
    expect(seen[0].params).toEqual({ room: 'lobby' });
    expect(seen[0].route).toBe('ws/chat/:room/');
  });

  test('decodes percent-encoded parameters', async () => {
    const seen: Scope[] = [];
    await URLRouter([path('ws/chat/:room/', recorder(seen))])(scopeFor('/ws/chat/caf%C3%A9/'), runtime);
    expect(seen[0].params.room).toBe('café');
  });

  test('refuses with 404 when no route matches, including a partial match', async () => {
    const router = URLRouter([path('ws/chat/:room/', recorder([]))]);
    for (const p of ['/ws/other/', '/ws/chat/lobby/extra/', '/ws/chat/lobby', '/ws/chat//']) {
      await expect(router(scopeFor(p), runtime)).rejects.toMatchObject({ status: 404 });
    }
    await expect(router(scopeFor('/nope'), runtime)).rejects.toBeInstanceOf(HandshakeRejected);
  });

  test('a constraint in parentheses restricts a parameter', async () => {
    const seen: Scope[] = [];
    const router = URLRouter([path('ws/items/:id(\\d+)/', recorder(seen))]);
    await router(scopeFor('/ws/items/42/'), runtime);
    expect(seen[0].params.id).toBe('42');
    await expect(router(scopeFor('/ws/items/abc/'), runtime)).rejects.toMatchObject({ status: 404 });
  });

  test('a constraint with its own groups does not shift later parameters', async () => {
    const seen: Scope[] = [];
    await URLRouter([path('ws/:kind(a|(b))/:id/', recorder(seen))])(scopeFor('/ws/b/7/'), runtime);
    expect(seen[0].params).toEqual({ kind: 'b', id: '7' });
  });

  test('nested routers match a prefix and pass the rest on, merging params', async () => {
    const seen: Scope[] = [];
    const inner = URLRouter([path('rooms/:room/', recorder(seen))]);
    const outer = URLRouter([path('ws/:tenant/', inner)]);
    await outer(scopeFor('/ws/acme/rooms/main/'), runtime);
    expect(seen[0].params).toEqual({ tenant: 'acme', room: 'main' });
    expect(seen[0].route).toBe('ws/:tenant/rooms/:room/');
    await expect(outer(scopeFor('/ws/acme/other/'), runtime)).rejects.toMatchObject({ status: 404 });
  });

  test('routes are tried in order', async () => {
    const first: Scope[] = [];
    const second: Scope[] = [];
    const router = URLRouter([path('ws/special/', recorder(first)), path('ws/:name/', recorder(second))]);
    await router(scopeFor('/ws/special/'), runtime);
    await router(scopeFor('/ws/other/'), runtime);
    expect([first.length, second.length]).toEqual([1, 1]);
  });

  test('a parameter named twice or an invalid constraint is a clear error when routes are built', () => {
    expect(() => path('ws/:a/:a/', recorder([]))).toThrow(/appears twice/);
    expect(() => path('ws/:a([)/', recorder([]))).toThrow(/invalid parameter pattern/);
  });
});
