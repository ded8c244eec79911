import {
  HandshakeRejected,
  InMemoryChannelLayer,
  NoRoute,
  type Connection,
  type RouteParamsOf,
  type Runtime,
  type Scope,
  URLRouter,
  WebsocketConsumer,
  authMiddleware,
  createLogger,
  path,
  rePath,
} from '../../src';

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

/** A consumer class as a route target: it must match the whole path. */
class Endpoint extends WebsocketConsumer {}

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

  test('refuses with 404 when no route matches, including a partial match of a consumer route', async () => {
    const router = URLRouter([path('ws/chat/:room/', Endpoint)]);
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

describe('routing parity with Channels', () => {
  test('a router wrapped in middleware inside path() routes the rest of the path', async () => {
    const seen: Scope[] = [];
    const router = URLRouter([
      path('number/:n/', authMiddleware(() => ({ id: 'u1' }))(URLRouter([path('test/:p/', recorder(seen))]))),
    ]);
    const scope = scopeFor('/number/42/test/3/');
    await router({ ...scope, headers: { authorization: 'Bearer t' } }, runtime);
    expect(seen[0].params).toEqual({ n: '42', p: '3' });
    expect(seen[0].user).toEqual({ id: 'u1' });
    expect(seen[0].route).toBe('number/:n/test/:p/');
  });

  test('a consumer class matches the whole remaining path, even behind a wrapped router', async () => {
    const router = URLRouter([path('number/:n/', authMiddleware(() => null)(URLRouter([path('test/', Endpoint)])))]);
    await expect(router(scopeFor('/number/1/test/'), runtime)).resolves.toBeInstanceOf(Endpoint);
    await expect(router(scopeFor('/number/1/test/more/'), runtime)).rejects.toBeInstanceOf(NoRoute);
  });

  test('when an inner router has no match, routing falls through to the next routes', async () => {
    const inner: Scope[] = [];
    const next: Scope[] = [];
    const router = URLRouter([path('prefix/', URLRouter([path('no-match/', recorder(inner))])), path('prefix/stuff/', recorder(next))]);
    await router(scopeFor('/prefix/stuff/'), runtime);
    expect([inner.length, next.length]).toEqual([0, 1]);
    expect(next[0].route).toBe('prefix/stuff/');
  });

  test('only "no route" falls through: another refusal of an inner application stands', async () => {
    const next: Scope[] = [];
    const refuse = async (): Promise<Connection> => {
      throw new HandshakeRejected(404, 'item 7 does not exist');
    };
    const router = URLRouter([path('prefix/', refuse), path('prefix/stuff/', recorder(next))]);
    await expect(router(scopeFor('/prefix/stuff/'), runtime)).rejects.toThrow('item 7 does not exist');
    expect(next).toHaveLength(0);
  });

  test('no route is a NoRoute: a HandshakeRejected with status 404', async () => {
    const error = await URLRouter([])(scopeFor('/x/'), runtime).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoRoute);
    expect(error).toBeInstanceOf(HandshakeRejected);
    expect(error).toMatchObject({ status: 404 });
  });

  test('rePath routes by regular expression; named groups become params, Python (?P<name>) included', async () => {
    const seen: Scope[] = [];
    const router = URLRouter([
      rePath(/^ws\/chat\/(?<room>\w+)\/$/, recorder(seen)),
      rePath('^ws/items/(?P<id>[0-9]+)/(?P<slug>[-\\w]+)/$', recorder(seen)),
    ]);
    await router(scopeFor('/ws/chat/lobby/'), runtime);
    await router(scopeFor('/ws/items/7/a-b/'), runtime);
    expect(seen.map((s) => s.params)).toEqual([{ room: 'lobby' }, { id: '7', slug: 'a-b' }]);
    await expect(router(scopeFor('/ws/items/x/a/'), runtime)).rejects.toBeInstanceOf(NoRoute);
  });

  test('rePath matches from the start of the remaining path and nests like path()', async () => {
    const seen: Scope[] = [];
    const router = URLRouter([rePath('^t/(?P<tenant>\\w+)/$', URLRouter([rePath('rooms/(?P<room>\\w+)/$', recorder(seen))]))]);
    await router(scopeFor('/t/acme/rooms/main/'), runtime);
    expect(seen[0].params).toEqual({ tenant: 'acme', room: 'main' });
    // Anchored at the start: 'x/rooms/main/' must not match by searching further in.
    await expect(URLRouter([rePath('rooms/(?P<room>\\w+)/$', Endpoint)])(scopeFor('/x/rooms/main/'), runtime)).rejects.toBeInstanceOf(NoRoute);
    // A leading '/' is allowed, as in path().
    await expect(URLRouter([rePath('^/rooms/$', Endpoint)])(scopeFor('/rooms/'), runtime)).resolves.toBeInstanceOf(Endpoint);
    // A consumer must match the whole path even without '$'.
    await expect(URLRouter([rePath('rooms/', Endpoint)])(scopeFor('/rooms/extra/'), runtime)).rejects.toBeInstanceOf(NoRoute);
  });

  test('typed converters: int gives a number, str, slug, uuid and path check and give strings', async () => {
    const seen: Scope[] = [];
    const router = URLRouter([
      path('int/:id(int)/', recorder(seen)),
      path('str/:s(str)/', recorder(seen)),
      path('slug/:s(slug)/', recorder(seen)),
      path('uuid/:u(uuid)/', recorder(seen)),
      path('files/:rest(path)', recorder(seen)),
    ]);
    await router(scopeFor('/int/42/'), runtime);
    await router(scopeFor('/str/a%20b/'), runtime);
    await router(scopeFor('/slug/my-post_1/'), runtime);
    await router(scopeFor('/uuid/0b7e8c4a-1d2f-4a3b-9c8d-7e6f5a4b3c2d/'), runtime);
    await router(scopeFor('/files/a/b/c.txt'), runtime);
    expect(seen.map((s) => s.params)).toEqual([
      { id: 42 },
      { s: 'a b' },
      { s: 'my-post_1' },
      { u: '0b7e8c4a-1d2f-4a3b-9c8d-7e6f5a4b3c2d' },
      { rest: 'a/b/c.txt' },
    ]);
    const endpoints = URLRouter(['int/:id(int)/', 'str/:s(str)/', 'slug/:s(slug)/', 'uuid/:u(uuid)/', 'files/:rest(path)'].map((p) => path(p, Endpoint)));
    for (const p of ['/int/4x/', '/int/-1/', '/int/99999999999999999999/', '/str/a/b/', '/slug/a.b/', '/uuid/not-a-uuid/', '/files/']) {
      await expect(endpoints(scopeFor(p), runtime)).rejects.toBeInstanceOf(NoRoute);
    }
  });

  test('only the five converter names convert: any other word in parentheses is a regex constraint', async () => {
    const seen: Scope[] = [];
    const router = URLRouter([path('a/:x(ints)/', recorder(seen)), path('b/:y(toString)/', recorder(seen))]);
    await router(scopeFor('/a/ints/'), runtime);
    await router(scopeFor('/b/toString/'), runtime);
    expect(seen.map((s) => s.params)).toEqual([{ x: 'ints' }, { y: 'toString' }]);
    await expect(URLRouter([path('a/:x(ints)/', Endpoint)])(scopeFor('/a/7/'), runtime)).rejects.toBeInstanceOf(NoRoute);
  });

  test('RouteParamsOf types converters: int is a number, constraints stay strings', () => {
    const typed: RouteParamsOf<'x/:id(int)/:name(slug)/:room([\\w-]{1,50})/'> = { id: 7, name: 'a', room: 'b' };
    // @ts-expect-error an int parameter is a number, not a string
    const wrong: RouteParamsOf<'x/:id(int)/'> = { id: '7' };
    // @ts-expect-error a constrained parameter is a string
    const wrongRoom: RouteParamsOf<'ws/chat/:room([\\w-]{1,50})/'> = { room: 1 };
    expect([typed.id + 1, wrong, wrongRoom]).toBeDefined();
  });

  test('a consumer typed with RouteParamsOf reads a number from an int parameter', async () => {
    class Item extends WebsocketConsumer<RouteParamsOf<'items/:id(int)/'>> {
      next(): number {
        return this.scope.params.id + 1;
      }
    }
    const item = (await URLRouter([path('items/:id(int)/', Item)])(scopeFor('/items/41/'), runtime)) as Item;
    expect(item.next()).toBe(42);
  });

  test('route mistakes are clear errors when routes are built', () => {
    expect(() => path('ws/:room([\\w-]+/', Endpoint)).toThrow(/route ws\/:room\(\[\\w-\]\+\/: unbalanced parentheses/);
    expect(() => path('ws/(x/', Endpoint)).toThrow(/unbalanced parentheses/);
    expect(() => rePath('ws/(?P<room>[a-/', Endpoint)).toThrow(/route ws\/\(\?P<room>\[a-\/: invalid regular expression/);
    expect(() => path('ws/', {} as never)).toThrow(/route ws\/: the target must be a WebsocketConsumer class or an application/);
    expect(() => path('ws/', class NotAConsumer {} as never)).toThrow(/NotAConsumer is a class but not a WebsocketConsumer/);
    expect(() => URLRouter([Endpoint as never])).toThrow(/URLRouter: route 0 is not a path\(\) or rePath\(\) route/);
  });
});
