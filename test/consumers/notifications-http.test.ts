// The notifications demo's HTTP side (login, token check, push) through a real Server on port 0.
import { request } from 'node:http';
import { type DemoOptions, createDemo, demoOptionsFromEnv, http as defaultHttp, application as defaultApp } from '../../routing';
import { InMemoryChannelLayer, Server, verifyToken } from '../../src';

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

const JSON_TYPE = { 'content-type': 'application/json' };

describe('notifications demo over HTTP', () => {
  let server: Server | null = null;
  let layer: InMemoryChannelLayer;
  let port: number;

  beforeEach(() => (layer = new InMemoryChannelLayer()));
  afterEach(async () => {
    await server?.close();
    server = null;
    await layer.close();
  });

  const options = (overrides: Partial<DemoOptions> = {}): DemoOptions => ({
    secret: 'test-secret',
    demoPassword: 'open sesame',
    pushSecret: 'push-secret',
    development: false,
    allowedOrigins: ['localhost', '127.0.0.1'],
    ...overrides,
  });

  async function start(overrides: Partial<DemoOptions> = {}): Promise<void> {
    const demo = createDemo(options(overrides));
    server = new Server({ app: demo.application, http: demo.http, channelLayer: layer, port: 0, heartbeatInterval: 0 });
    port = (await server.listen()).port;
  }

  /** One request on its own connection (no keep-alive, so close() has nothing to wait for). */
  function send(method: string, path: string, body: string | null, headers: Record<string, string> = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {
            parsed = { text };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  }

  const postJson = (path: string, value: unknown, headers: Record<string, string> = {}) =>
    send('POST', path, JSON.stringify(value), { ...JSON_TYPE, ...headers });

  /** Resolves with the next message on a channel in `group`. */
  async function listen(group: string): Promise<() => Promise<unknown>> {
    const channel = await layer.newChannel();
    await layer.groupAdd(group, channel);
    return () => layer.receive(channel);
  }

  describe('login: POST /notifications/token', () => {
    test('with DEMO_PASSWORD set, a missing or wrong password is refused with 401', async () => {
      await start();
      for (const body of [{ user: 'alice' }, { user: 'alice', password: 'wrong' }, { user: 'alice', password: '' }, { user: 'alice', password: 7 }]) {
        const reply = await postJson('/notifications/token', body);
        expect(reply.status).toBe(401);
        expect(reply.body.token).toBeUndefined();
        expect(String(reply.body.error)).toMatch(/password/);
      }
    });

    test('with the right password, the token names that user and verifies with the secret', async () => {
      await start();
      const reply = await postJson('/notifications/token', { user: 'alice', password: 'open sesame' });
      expect(reply.status).toBe(200);
      expect(reply.body.user).toBe('alice');
      expect(verifyToken(String(reply.body.token), 'test-secret')).toBe('alice');
    });

    test('without DEMO_PASSWORD outside development, login is refused with 503 saying how to enable it', async () => {
      await start({ demoPassword: null, development: false });
      const reply = await postJson('/notifications/token', { user: 'alice' });
      expect(reply.status).toBe(503);
      expect(reply.body.token).toBeUndefined();
      expect(String(reply.body.error)).toMatch(/DEMO_PASSWORD/);
    });

    test('without DEMO_PASSWORD in development, any name logs in and the page is told it is a demo', async () => {
      await start({ demoPassword: null, development: true });
      const reply = await postJson('/notifications/token', { user: 'bob' });
      expect(reply.status).toBe(200);
      expect(verifyToken(String(reply.body.token), 'test-secret')).toBe('bob');
      expect((await send('GET', '/notifications/config', null)).body).toEqual({ login: 'open', push: true });
    });

    test('the page learns which login it must show', async () => {
      await start({ pushSecret: null });
      expect((await send('GET', '/notifications/config', null)).body).toEqual({ login: 'password', push: false });
      await server!.close();
      await start({ demoPassword: null });
      expect((await send('GET', '/notifications/config', null)).body).toEqual({ login: 'disabled', push: true });
    });
  });

  describe('token check: GET /notifications/token', () => {
    test('a valid token gets 200 with its user and expiry; a forged or missing one gets 401', async () => {
      await start();
      const { body } = await postJson('/notifications/token', { user: 'carol', password: 'open sesame' });
      const valid = await send('GET', '/notifications/token', null, { authorization: `Bearer ${String(body.token)}` });
      expect(valid.status).toBe(200);
      expect(valid.body.user).toBe('carol');
      expect(valid.body.expires).toBeGreaterThan(Date.now());
      await server!.close();
      await start({ secret: 'another-secret' }); // a restart with another SECRET: old tokens are refused
      expect((await send('GET', '/notifications/token', null, { authorization: `Bearer ${String(body.token)}` })).status).toBe(401);
      expect((await send('GET', '/notifications/token', null)).status).toBe(401);
    });
  });

  describe('push: POST /notifications/push', () => {
    test('without PUSH_SECRET, push is refused with 503 saying how to enable it', async () => {
      await start({ pushSecret: null });
      const reply = await postJson('/notifications/push', { title: 't', body: 'b' });
      expect(reply.status).toBe(503);
      expect(String(reply.body.error)).toMatch(/PUSH_SECRET/);
    });

    test('a missing or wrong X-Push-Secret is refused with 403', async () => {
      await start();
      const next = await listen('notifications');
      const variants: Record<string, string>[] = [{}, { 'x-push-secret': 'wrong' }, { 'x-push-secret': 'push-secret-and-more' }, { 'x-push-secret': '' }];
      for (const headers of variants) {
        const reply = await postJson('/notifications/push', { title: 't', body: 'b' }, headers);
        expect(reply.status).toBe(403);
        expect(String(reply.body.error)).toMatch(/X-Push-Secret/);
      }
      // Nothing was pushed: the first message the group sees is the one sent now.
      await layer.groupSend('notifications', { type: 'marker' });
      expect(await next()).toEqual({ type: 'marker' });
    });

    test('the right X-Push-Secret pushes to one user', async () => {
      await start();
      const next = await listen('user.alice');
      const reply = await postJson('/notifications/push', { title: 'Hi', body: 'just you', user: 'alice' }, { 'x-push-secret': 'push-secret' });
      expect(reply).toEqual({ status: 202, body: { group: 'user.alice' } });
      expect(await next()).toEqual({ type: 'notification.message', title: 'Hi', body: 'just you' });
    });

    test('the socket address is not trusted: a request from localhost without the secret is refused', async () => {
      await start({ development: true });
      expect((await postJson('/notifications/push', { title: 't', body: 'b' })).status).toBe(403);
    });
  });

  describe('cross-site requests', () => {
    test('a text/plain POST (a form or no-cors fetch from any site) is refused with 415', async () => {
      await start();
      const plain = { 'content-type': 'text/plain' };
      const push = await send('POST', '/notifications/push', JSON.stringify({ title: 't', body: 'b' }), { ...plain, 'x-push-secret': 'push-secret' });
      expect(push.status).toBe(415);
      const login = await send('POST', '/notifications/token', JSON.stringify({ user: 'a', password: 'open sesame' }), plain);
      expect(login.status).toBe(415);
      expect(login.body.token).toBeUndefined();
      expect((await send('POST', '/notifications/token', JSON.stringify({ user: 'a', password: 'open sesame' }))).status).toBe(415);
    });

    test('a JSON POST from a foreign Origin or with Sec-Fetch-Site: cross-site is refused with 403', async () => {
      await start();
      const cases: Record<string, string>[] = [
        { origin: 'https://evil.example' },
        { origin: `http://localhost:${port + 1}` },
        { origin: 'null' },
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
      ];
      for (const headers of cases) {
        const login = await postJson('/notifications/token', { user: 'a', password: 'open sesame' }, headers);
        expect([headers, login.status]).toEqual([headers, 403]);
        const push = await postJson('/notifications/push', { title: 't', body: 'b' }, { ...headers, 'x-push-secret': 'push-secret' });
        expect([headers, push.status]).toEqual([headers, 403]);
      }
    });

    test('a same-origin JSON POST, as the page sends it, is accepted', async () => {
      await start();
      const page = { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' };
      const login = await postJson('/notifications/token', { user: 'dave', password: 'open sesame' }, page);
      expect(login.status).toBe(200);
      const push = await postJson('/notifications/push', { title: 't', body: 'b' }, { ...page, 'x-push-secret': 'push-secret' });
      expect(push.status).toBe(202);
      // Content-Type parameters are fine.
      const charset = await send('POST', '/notifications/token', JSON.stringify({ user: 'dave', password: 'open sesame' }), {
        'content-type': 'application/json; charset=utf-8',
      });
      expect(charset.status).toBe(200);
    });
  });

  describe('the environment', () => {
    test('development means HOST is loopback (or unset) and NODE_ENV is not production', () => {
      expect(demoOptionsFromEnv({}).development).toBe(true);
      expect(demoOptionsFromEnv({ HOST: 'localhost' }).development).toBe(true);
      expect(demoOptionsFromEnv({ HOST: '::1' }).development).toBe(true);
      expect(demoOptionsFromEnv({ HOST: '127.0.0.2', NODE_ENV: 'test' }).development).toBe(true);
      expect(demoOptionsFromEnv({ HOST: '0.0.0.0' }).development).toBe(false);
      expect(demoOptionsFromEnv({ HOST: '::' }).development).toBe(false);
      expect(demoOptionsFromEnv({ HOST: '192.168.1.5' }).development).toBe(false);
      expect(demoOptionsFromEnv({ NODE_ENV: 'production' }).development).toBe(false);
    });

    test('DEMO_PASSWORD, PUSH_SECRET and SECRET come from the environment; empty means unset', () => {
      const set = demoOptionsFromEnv({ DEMO_PASSWORD: 'pw', PUSH_SECRET: 'ps', SECRET: 's' });
      expect(set).toMatchObject({ demoPassword: 'pw', pushSecret: 'ps', secret: 's' });
      const empty = demoOptionsFromEnv({ DEMO_PASSWORD: '', PUSH_SECRET: '' });
      expect(empty).toMatchObject({ demoPassword: null, pushSecret: null });
      expect(empty.secret).toMatch(/^[0-9a-f]{64}$/);
    });

    test('the app npm start serves (no PUSH_SECRET here) refuses a cross-site text/plain push and an unauthenticated one', async () => {
      server = new Server({ app: defaultApp, http: defaultHttp, channelLayer: layer, port: 0, heartbeatInterval: 0 });
      port = (await server.listen()).port;
      const next = await listen('notifications');
      const crossSite = await send('POST', '/notifications/push', JSON.stringify({ title: 't', body: 'b' }), {
        'content-type': 'text/plain',
        origin: 'https://evil.example',
      });
      expect(crossSite.status).toBe(403);
      expect((await postJson('/notifications/push', { title: 't', body: 'b' })).status).toBe(503);
      await layer.groupSend('notifications', { type: 'marker' });
      expect(await next()).toEqual({ type: 'marker' });
    });
  });
});
