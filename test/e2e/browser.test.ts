// The demo pages in a real browser against the real app (routing.ts) served in-process.
// SCREENSHOT_DIR=/tmp/shots saves chat.png and notifications.png there, to look at the pages.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { type DemoOptions, createDemo } from '../../routing';
import { InMemoryChannelLayer, LayerUnavailable, type LayerMessage, Server } from '../../src';
import { chromiumAvailable, launchChromium } from '../support/browser';
import { until } from '../support/wait';

// Throws under CI=true when Chromium is missing, so the suite fails instead of skipping.
const suite = chromiumAvailable('demo pages') ? describe : describe.skip;

/** As an operator would run it: a demo password and a push secret, not in development. */
const options: DemoOptions = {
  secret: 'browser-test-secret',
  demoPassword: 'demo password',
  pushSecret: 'push secret',
  development: false,
  allowedOrigins: ['127.0.0.1'],
};

/** The demo app on `port` (0: any), with `overrides` (another SECRET: a restart that forgets every token). */
function serve(port: number, overrides: Partial<DemoOptions> = {}): Server {
  const { application, http } = createDemo({ ...options, ...overrides });
  return new Server({ app: application, http, port, heartbeatInterval: 0 });
}

/** An in-memory layer that can act as if Redis went away: local members get a group send, then it fails. */
class FlakyLayer extends InMemoryChannelLayer {
  failing = false;
  override async groupSend(group: string, message: LayerMessage): Promise<void> {
    await super.groupSend(group, message);
    if (this.failing) throw new LayerUnavailable('simulated outage (test)');
  }
}

suite('demo pages in Chromium', () => {
  let server: Server;
  let browser: Browser;
  let base: string;
  /** A test restarted the server with other options. */
  let reconfigured = false;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    server = serve(0);
    const { port } = await server.listen();
    base = `http://127.0.0.1:${port}`;
    browser = await launchChromium();
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
    if (reconfigured) await restart(); // the next test gets the server as configured in `options`
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A page in its own browser context (its own cookies and storage: a separate user). */
  async function newPage(path: string, at = base): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(at + path);
    return page;
  }

  async function connected(page: Page): Promise<void> {
    await page.locator('#state[data-state="connected"]').waitFor({ timeout: 10_000 });
  }

  async function push(body: { title: string; body: string; user?: string }): Promise<void> {
    const response = await fetch(`${base}/notifications/push`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Push-Secret': 'push secret', Connection: 'close' },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(202);
    await response.text();
  }

  /** Opens the chat page of `room` and gives it `name` (the page asks before it connects). */
  async function chatAs(name: string, room: string, at = base): Promise<Page> {
    const page = await newPage(`/chat/${room}/`, at);
    await page.locator('#name').fill(name);
    await page.locator('#name').press('Enter');
    await connected(page);
    await expect(page.locator('#me').textContent()).resolves.toBe(name);
    return page;
  }

  async function say(page: Page, text: string): Promise<void> {
    await page.locator('#message').fill(text);
    await page.locator('#message').press('Enter');
  }

  test('chat: the index page leads to the room, which asks for a name and remembers it', async () => {
    const page = await newPage('/');
    await page.locator('#room').fill('lobby');
    await Promise.all([page.waitForURL(`${base}/chat/lobby/`), page.locator('#room').press('Enter')]);
    await expect(page.locator('#room').textContent()).resolves.toBe('lobby');
    // No socket before a name: the page asks first.
    await expect(page.locator('#state').getAttribute('data-state')).resolves.toBe('closed');
    await page.locator('#name').fill('<b>x</b>');
    await page.locator('#name').press('Enter');
    await page.locator('#name-error', { hasText: 'letters' }).waitFor({ timeout: 10_000 });
    await page.locator('#name').fill('Zoë 2');
    await page.locator('#join').click();
    await connected(page);
    // Remembered (localStorage): a reload connects with the same name without asking.
    await page.reload();
    await connected(page);
    await expect(page.locator('#me').textContent()).resolves.toBe('Zoë 2');
    await expect(page.locator('#name-form').isHidden()).resolves.toBe(true);
  });

  test('chat: two people chat; each message shows who wrote it and when, and your own look different', async () => {
    const before = Date.now();
    const [alice, bob] = [await chatAs('alice', 'lobby'), await chatAs('Bob B', 'lobby')];

    // Markup in a message must show as text, never be parsed.
    const text = 'hello from alice <b>not bold</b>';
    await say(alice, text);
    for (const page of [bob, alice]) {
      const item = page.locator('#log li.message', { hasText: text });
      await item.waitFor({ timeout: 10_000 });
      await expect(item.locator('.text').textContent()).resolves.toBe(text);
      await expect(item.locator('.name').textContent()).resolves.toBe('alice');
      await expect(page.locator('#log b').count()).resolves.toBe(0);
      // The time the server stamped, shown in local time (datetime holds it exactly).
      const stamped = Date.parse((await item.locator('time').getAttribute('datetime')) ?? '');
      expect(stamped).toBeGreaterThanOrEqual(before - 1000);
      expect(stamped).toBeLessThanOrEqual(Date.now());
      await expect(item.locator('time').textContent()).resolves.toMatch(/\d{1,2}:\d{2}/);
    }
    await alice.locator('#log li.message.own:not(.pending)', { hasText: text }).waitFor({ timeout: 10_000 });
    await expect(bob.locator('#log li.message', { hasText: text }).getAttribute('class')).resolves.not.toMatch(/\bown\b/);
    await expect(alice.locator('#message').inputValue()).resolves.toBe('');

    // The send button works too; bob's message is his own on his page, alice's name is not on it.
    await bob.locator('#message').fill('hi alice');
    await bob.locator('#send').click();
    const atAlice = alice.locator('#log li.message', { hasText: 'hi alice' });
    await atAlice.waitFor({ timeout: 10_000 });
    await expect(atAlice.locator('.name').textContent()).resolves.toBe('Bob B');
    await expect(atAlice.getAttribute('class')).resolves.not.toMatch(/\bown\b/);
    await bob.locator('#log li.message.own:not(.pending)', { hasText: 'hi alice' }).waitFor({ timeout: 10_000 });
    expect(await alice.locator('#log li.message.own').count()).toBe(1);
    expect(await bob.locator('#log li.message.own').count()).toBe(1);

    if (process.env.SCREENSHOT_DIR) await alice.screenshot({ path: `${process.env.SCREENSHOT_DIR}/chat.png` });
  });

  test('chat: an error about a message is shown right after that message', async () => {
    // A layer that acts as if Redis went away: this server's members get the message, then the send fails.
    const layer = new FlakyLayer();
    const { application, http } = createDemo(options);
    const flaky = new Server({ app: application, http, channelLayer: layer, port: 0, heartbeatInterval: 0 });
    const at = `http://127.0.0.1:${(await flaky.listen()).port}`;
    try {
      const page = await chatAs('carol', 'flaky', at);
      await say(page, 'first, delivered');
      await page.locator('#log li.message.own:not(.pending)', { hasText: 'first, delivered' }).waitFor({ timeout: 10_000 });
      layer.failing = true;
      // Two sends in one task: both are on the page before the server's first answer, so each error
      // must find its own message rather than land at the end of the log.
      await page.evaluate(`(() => {
        const input = document.getElementById('message');
        const form = document.getElementById('send-form');
        input.value = 'second, only here';
        form.requestSubmit();
        input.value = 'third, only here';
        form.requestSubmit();
      })()`);
      await page.locator('#log li.message.own:not(.pending)', { hasText: 'third, only here' }).waitFor({ timeout: 10_000 });
      await until(async () => (await page.locator('#log li.error').count()) === 2);
      const items = await page.locator('#log li').evaluateAll((nodes) =>
        nodes.map((node) => `${node.className.includes('error') ? 'error' : 'message'}: ${node.querySelector('.text')?.textContent ?? ''}`),
      );
      expect(items).toEqual(['message: first, delivered', 'message: second, only here', 'error: ', 'message: third, only here', 'error: ']);
      for (const text of await page.locator('#log li.error').allTextContents()) expect(text).toMatch(/not delivered to other servers/);
    } finally {
      await flaky.close();
      await layer.close();
    }
  });

  async function logIn(user: string): Promise<Page> {
    const page = await newPage('/notifications/');
    await page.locator('#user').fill(user);
    await page.locator('#password').fill('demo password');
    await page.locator('#login').click();
    await connected(page);
    await expect(page.locator('#who').textContent()).resolves.toBe(user);
    return page;
  }

  /** Stops the server (the pages' sockets get 1001) and starts another on the same port with `overrides`. */
  async function restart(overrides: Partial<DemoOptions> = {}): Promise<void> {
    const { port } = server.address();
    await server.close();
    server = serve(port, overrides);
    await server.listen();
    reconfigured = Object.keys(overrides).length > 0;
  }

  test('notifications: a user gets their own and broadcasts, never another user\'s', async () => {
    const titles = (page: Page) => page.locator('#notifications .notification .title').allTextContents();
    const alice = await logIn('alice');
    const bob = await logIn('bob');

    await push({ title: 'for alice', body: 'only yours', user: 'alice' });
    await alice.locator('.notification', { hasText: 'for alice' }).waitFor({ timeout: 10_000 });
    await expect(alice.locator('.notification .body').first().textContent()).resolves.toBe('only yours');

    await push({ title: 'for everyone', body: 'broadcast' });
    await alice.locator('.notification', { hasText: 'for everyone' }).waitFor({ timeout: 10_000 });
    await bob.locator('.notification', { hasText: 'for everyone' }).waitFor({ timeout: 10_000 });

    // Bob's own notification was sent after alice's: once it is shown, alice's would have been too.
    await push({ title: 'for bob', body: 'only yours', user: 'bob' });
    await bob.locator('.notification', { hasText: 'for bob' }).waitFor({ timeout: 10_000 });
    expect(await titles(bob)).toEqual(['for bob', 'for everyone']);
    expect(await titles(alice)).toEqual(['for everyone', 'for alice']);

    if (process.env.SCREENSHOT_DIR) await alice.screenshot({ path: `${process.env.SCREENSHOT_DIR}/notifications.png`, fullPage: true });
  });

  test('notifications: the login needs the demo password; a wrong one is refused and says so', async () => {
    const page = await newPage('/notifications/');
    await page.locator('#password').waitFor({ state: 'visible', timeout: 10_000 });
    await page.locator('#user').fill('mallory');
    await page.locator('#password').fill('guess');
    await page.locator('#login').click();
    await page.locator('#login-error', { hasText: 'wrong password' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#session').isHidden()).toBe(true);
  });

  test('notifications: without DEMO_PASSWORD in development the page says any name logs in; elsewhere that login is off', async () => {
    await restart({ demoPassword: null, development: true });
    const open = await newPage('/notifications/');
    await open.locator('#login-mode', { hasText: 'any name logs in' }).waitFor({ timeout: 10_000 });
    expect(await open.locator('#password').isHidden()).toBe(true);
    await open.locator('#user').fill('frank');
    await open.locator('#login').click();
    await connected(open);

    await restart({ demoPassword: null, development: false });
    const closed = await newPage('/notifications/');
    await closed.locator('#login-mode', { hasText: 'DEMO_PASSWORD' }).waitFor({ timeout: 10_000 });
    expect(await closed.locator('#login').isDisabled()).toBe(true);
  });

  test('notifications: after a restart with another SECRET (its token refused) the page logs in again by itself', async () => {
    const page = await logIn('dora');
    const checks: number[] = [];
    page.on('response', (response) => {
      if (new URL(response.url()).pathname === '/notifications/token' && response.request().method() === 'GET') checks.push(response.status());
    });
    await restart({ secret: 'the secret after the restart' });
    // Today's page retries the refused token forever (each refusal is a bare 1006); this one notices and logs in again.
    await page.locator('#state[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
    await connected(page);
    expect(checks).toContain(401);
    await push({ title: 'after the restart', body: 'still reaches dora', user: 'dora' });
    await page.locator('.notification', { hasText: 'after the restart' }).waitFor({ timeout: 10_000 });
  });

  test('notifications: when logging in again fails too (another DEMO_PASSWORD), the page shows the login form and why', async () => {
    const page = await logIn('erin');
    await restart({ secret: 'yet another secret', demoPassword: 'a new password' });
    await page.locator('#login-form').waitFor({ state: 'visible', timeout: 20_000 });
    await expect(page.locator('#login-error').textContent()).resolves.toMatch(/log in again/i);
    await expect(page.locator('#user').inputValue()).resolves.toBe('erin');
    await expect(page.locator('#state').getAttribute('data-state')).resolves.toBe('closed');
    await page.locator('#password').fill('a new password');
    await page.locator('#login').click();
    await connected(page);
  });

  test('the reconnect countdown counts down in seconds', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const start = Date.now();
    await page.clock.install({ time: start });
    await page.goto(`${base}/notifications/`);
    await page.clock.pauseAt(start + 60_000); // from here the page's time moves only when the test moves it
    // The function every page's onState calls, on an element of its own (the test file has no DOM types: a string).
    await page.evaluate(`(() => {
      const element = document.createElement('span');
      element.id = 'countdown';
      document.body.appendChild(element);
      window.channelkit.showState(element, 'reconnecting', { code: 1006, delay: 5000 });
    })()`);
    const countdown = () => page.locator('#countdown').textContent();
    await expect(countdown()).resolves.toBe('reconnecting in 5 s');
    await page.clock.runFor(2000);
    await expect(countdown()).resolves.toBe('reconnecting in 3 s');
    await page.clock.runFor(2500);
    await expect(countdown()).resolves.toBe('reconnecting in 1 s');
  });

  test('notifications: a token about to expire is renewed before the page reconnects', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.clock.install(); // the page's time flows as usual until the test moves it
    const tokenRequests: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/notifications/token') tokenRequests.push(request.method());
    });
    await page.goto(`${base}/notifications/`);
    await page.locator('#user').fill('carol');
    await page.locator('#password').fill('demo password');
    const [login] = await Promise.all([
      page.waitForResponse((response) => new URL(response.url()).pathname === '/notifications/token'),
      page.locator('#login').click(),
    ]);
    const token = ((await login.json()) as { token: string }).token;
    await connected(page);
    expect(tokenRequests).toEqual(['POST']);

    // Move the page's clock to 30 s before the token expires (`<id>.<expiry s>.<signature>`); then the socket drops.
    const expiresAt = Number(token.split('.')[1]) * 1000;
    await page.clock.fastForward(expiresAt - 30_000 - (await page.evaluate(() => Date.now())));
    const { port } = server.address();
    await server.close();
    await page.locator('#state[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
    server = serve(port);
    await server.listen();
    await connected(page);
    expect(tokenRequests.length).toBeGreaterThanOrEqual(2);

    await push({ title: 'after renewal', body: 'still yours', user: 'carol' });
    await page.locator('.notification', { hasText: 'after renewal' }).waitFor({ timeout: 10_000 });
  });

  test('chat: the page reconnects by itself after a server restart', async () => {
    const page = await chatAs('dan', 'restart');
    const { port } = server.address();
    await server.close(); // closes the page's socket with 1001
    await page.locator('#state[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
    server = serve(port);
    await server.listen();
    await connected(page);
    await page.locator('#message').fill('back again');
    await page.locator('#message').press('Enter');
    await page.locator('#log li.message', { hasText: 'back again' }).waitFor({ timeout: 10_000 });
  });
});
