// channelkit/client in Chromium: the module as the demo server serves it (/static/channelkit-client.js,
// transpiled from src/client/), and the real chat page on it, against a fake protocol-v2 server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { serveClientScript, serveFile } from '../../src';
import { chromiumAvailable, launchChromium } from '../support/browser';
import { FakeChatServer } from '../support/fake-chat-server';
import { TcpProxy } from '../support/tcp-proxy';
import { until } from '../support/wait';

const suite = chromiumAvailable('channelkit/client') ? describe : describe.skip;

const publicDir = join(__dirname, '..', '..', 'public');

/** What routing.ts serves for the chat page: the page, /static/ and the client module. */
async function pages(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const { pathname } = new URL(req.url ?? '/', 'http://x');
  if (await serveClientScript(res, pathname)) return true;
  if (/^\/chat\/[\w-]+\/$/.test(pathname)) return serveFile(res, publicDir, 'chat.html');
  if (pathname.startsWith('/static/')) return serveFile(res, publicDir, pathname.slice('/static/'.length));
  if (pathname === '/blank/') {
    res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>blank</title>');
    return true;
  }
  return false;
}

suite('channelkit/client in Chromium', () => {
  let server: FakeChatServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    server = await FakeChatServer.start({ http: pages });
    browser = await launchChromium();
  });

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function open(path: string, port = server.port): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      // Chromium logs each failed socket attempt, and the favicon this server does not have.
      if (message.type() !== 'error' || /WebSocket connection/.test(message.text()) || message.location().url.endsWith('/favicon.ico')) return;
      problems.push(`${message.text()} (${message.location().url})`);
    });
    await page.goto(`http://127.0.0.1:${port}${path}`);
    (page as Page & { problems?: string[] }).problems = problems;
    return { page, context };
  }

  async function chatAs(name: string, room: string, port = server.port): Promise<{ page: Page; context: BrowserContext }> {
    const opened = await open(`/chat/${room}/`, port);
    await opened.page.locator('#name').fill(name);
    await opened.page.locator('#name').press('Enter');
    await opened.page.locator('#state[data-state="connected"]').waitFor({ timeout: 10_000 });
    return opened;
  }

  const texts = (page: Page) => page.locator('#log li.message .text').allTextContents();
  const names = (page: Page) => page.locator('#members li').allTextContents();

  test('chat page: the last messages on entry, and who is here beside them, by name, as people come and go', async () => {
    for (let i = 1; i <= 3; i++) server.publish('entry', `earlier ${i}`, 'bob');
    const alice = await chatAs('alice', 'entry');
    await until(async () => (await texts(alice.page)).length === 3, 10_000, 'the history');
    expect(await texts(alice.page)).toEqual(['earlier 1', 'earlier 2', 'earlier 3']);
    expect(await alice.page.locator('#log li.message .name').first().textContent()).toBe('bob');
    expect(new URL(server.urls.at(-1)!, 'http://x').searchParams.get('last')).toBe('50');
    await until(async () => (await names(alice.page)).join() === 'alice', 10_000, 'alice in the list');
    expect(await alice.page.locator('#members li.you').textContent()).toBe('alice');

    const bob = await chatAs('Bob B', 'entry');
    await until(async () => (await names(alice.page)).join() === 'alice,Bob B', 10_000, 'bob in alice\'s list');
    await until(async () => (await names(bob.page)).join() === 'alice,Bob B', 10_000, 'both in bob\'s list');
    await expect(alice.page.locator('#present-count').textContent()).resolves.toBe('(2)');

    await bob.context.close(); // bob closes his tab
    await until(async () => (await names(alice.page)).join() === 'alice', 10_000, 'bob gone from alice\'s list');
    if (process.env.SCREENSHOT_DIR) await alice.page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/chat-presence.png` });
    expect((alice.page as Page & { problems?: string[] }).problems).toEqual([]);
  });

  test('chat page: after a drop it reconnects with since and epoch, shows what it missed once, and says so', async () => {
    const { page } = await chatAs('carol', 'drop');
    server.publish('drop', 'before the drop', 'dave');
    await until(async () => (await texts(page)).length === 1, 10_000, 'the first message');
    const connectionsBefore = server.urls.length;

    server.drop();
    server.publish('drop', 'missed 1', 'dave'); // before the page can be back: it is away for these
    server.publish('drop', 'missed 2', 'dave');
    await page.locator('#log li.notice', { hasText: 'Reconnected: 2 missed messages' }).waitFor({ timeout: 10_000 });
    expect(await texts(page)).toEqual(['before the drop', 'missed 1', 'missed 2']);
    const asked = new URL(server.urls[connectionsBefore], 'http://x').searchParams;
    expect([asked.get('since'), asked.get('epoch'), asked.get('name')]).toEqual(['1', server.room('drop').epoch, 'carol']);

    // Own messages go on working, and the presence list is back.
    await page.locator('#message').fill('still here');
    await page.locator('#message').press('Enter');
    await page.locator('#log li.message.own:not(.pending)', { hasText: 'still here' }).waitFor({ timeout: 10_000 });
    await until(async () => (await names(page)).join() === 'carol', 10_000, 'carol in the list again');
    expect(await texts(page)).toEqual(['before the drop', 'missed 1', 'missed 2', 'still here']);
  });

  test('chat page: when the history is gone it says so, reloads the last messages, and repeats none it showed', async () => {
    const { page } = await chatAs('erin', 'lost');
    server.publish('lost', 'one', 'frank');
    server.publish('lost', 'two', 'frank');
    await until(async () => (await texts(page)).length === 2, 10_000, 'two messages');

    server.drop();
    for (let i = 3; i <= 8; i++) server.publish('lost', `m${i}`, 'frank');
    server.trim('lost', 3); // only m6..m8 are kept: offsets 3..5 are gone
    await page.locator('#log li.notice', { hasText: 'no longer kept' }).waitFor({ timeout: 10_000 });
    await until(async () => (await texts(page)).length === 5, 10_000, 'the reload');
    expect(await texts(page)).toEqual(['one', 'two', 'm6', 'm7', 'm8']);
    const asked = server.urls.slice(-2).map((url) => new URL(url, 'http://x').searchParams);
    expect(asked[0].get('since')).toBe('2');
    expect([asked[1].get('since'), asked[1].get('last')]).toEqual([null, '50']);
  });

  test('chat page behind a TCP proxy: a cut network shows reconnecting; once restored the page catches up', async () => {
    const proxy = await TcpProxy.start({ port: server.port });
    try {
      const { page } = await chatAs('hana', 'cut', proxy.port);
      server.publish('cut', 'before the cut', 'ivan');
      await until(async () => (await texts(page)).length === 1, 10_000, 'the first message');
      proxy.cut(); // Chromium's setOffline would leave this socket open; a cut does not
      await page.locator('#state[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
      server.publish('cut', 'during the cut', 'ivan');
      proxy.restore();
      await page.locator('#log li.notice', { hasText: 'Reconnected: 1 missed message' }).waitFor({ timeout: 20_000 });
      expect(await texts(page)).toEqual(['before the cut', 'during the cut']);
      await page.locator('#state[data-state="connected"]').waitFor({ timeout: 10_000 });
    } finally {
      await proxy.close();
    }
  });

  test('the module on its own: a path resolves against the page, a final close ends it, close() ends it', async () => {
    const { page } = await open('/blank/');
    const result = await page.evaluate(`(async () => {
      const { Room, Client } = await import('/static/channelkit-client.js');
      const states = [];
      const room = new Room({ url: '/ws/chat/module/?name=gina', last: 5, initialDelay: 10 });
      room.on('state', (change) => states.push(change.state + (change.by ? ':' + change.by + ':' + change.code : '')));
      const members = await new Promise((resolve) => room.on('presence', (change) => resolve([...change.members.values()].map((m) => m.name))));
      await room.close();
      const bad = new Client({ url: '/nowhere/', maxAttempts: 1, initialDelay: 10 });
      const ended = await new Promise((resolve) => bad.on('state', (change) => { if (change.state === 'closed') resolve(change); }));
      return { states, members, ended };
    })()`);
    expect(result).toEqual({
      states: ['connecting', 'open', 'closed:app:1000'],
      members: ['gina'],
      ended: { state: 'closed', by: 'retries', code: 1006, reason: '' },
    });
    expect(server.urls.at(-1)).toBe('/ws/chat/module/?name=gina&last=5');
  });
});
