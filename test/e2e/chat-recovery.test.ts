// The real chat page on the real demo server: a page that goes offline misses nothing and repeats
// nothing, across a network blip and across a server restart on Redis; presence shows both names.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { type DemoOptions, createDemo } from '../../routing';
import { type ChannelLayer, InMemoryChannelLayer, RedisPubSubChannelLayer, Server } from '../../src';
import { chromiumAvailable, launchChromium } from '../support/browser';
import { RedisServer, hasRedisServer } from '../support/redis';
import { TcpProxy } from '../support/tcp-proxy';
import { until } from '../support/wait';

const suite = chromiumAvailable('chat recovery') ? describe : describe.skip;

const options: DemoOptions = {
  secret: 'recovery-test-secret',
  demoPassword: 'demo password',
  pushSecret: 'push secret',
  development: false,
  allowedOrigins: ['127.0.0.1'],
};

function serve(layer: ChannelLayer, port = 0): Server {
  const { application, http } = createDemo(options);
  return new Server({ app: application, http, channelLayer: layer, port, heartbeatInterval: 0 });
}

suite('the chat page recovers what it missed (real server, Chromium)', () => {
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function chatAs(name: string, room: string, port: number): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${port}/chat/${room}/`);
    await page.locator('#name').fill(name);
    await page.locator('#name').press('Enter');
    await page.locator('#state[data-state="connected"]').waitFor({ timeout: 15_000 });
    return { page, context };
  }

  const texts = (page: Page) => page.locator('#log li.message .text').allTextContents();
  const names = (page: Page) => page.locator('#members li').allTextContents();

  async function say(page: Page, text: string): Promise<void> {
    await page.locator('#message').fill(text);
    await page.locator('#message').press('Enter');
    await page.locator('#log li.message.own:not(.pending)', { hasText: text }).waitFor({ timeout: 10_000 });
  }

  test('offline while five messages are sent: back online, the page shows all five exactly once, in order; presence lists both', async () => {
    const layer = new InMemoryChannelLayer();
    const server = serve(layer);
    const { port } = await server.listen();
    const proxy = await TcpProxy.start({ port });
    try {
      const alice = await chatAs('Alice', 'blip', port);
      const bob = await chatAs('Bob', 'blip', proxy.port);
      await until(async () => (await names(alice.page)).sort().join() === 'Alice,Bob', 10_000, 'both names on alice\'s page');
      await until(async () => (await names(bob.page)).sort().join() === 'Alice,Bob', 10_000, 'both names on bob\'s page');
      await say(alice.page, 'before');
      await until(async () => (await texts(bob.page)).join() === 'before', 10_000, 'bob sees the first message');

      // Chromium's setOffline does not cut an open WebSocket: the proxy cuts it as the network would.
      await bob.context.setOffline(true);
      proxy.cut();
      await bob.page.locator('#state[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
      const five = ['one', 'two', 'three', 'four', 'five'];
      for (const text of five) await say(alice.page, text);
      await bob.context.setOffline(false);
      proxy.restore();
      await bob.page.locator('#state[data-state="connected"]').waitFor({ timeout: 20_000 });
      await until(async () => (await texts(bob.page)).length >= 6, 10_000, 'bob catches up');
      expect(await texts(bob.page)).toEqual(['before', ...five]);
      await say(alice.page, 'after');
      await until(async () => (await texts(bob.page)).length === 7, 10_000, 'the next live message');
      expect(await texts(bob.page)).toEqual(['before', ...five, 'after']);
      await until(async () => (await names(bob.page)).sort().join() === 'Alice,Bob', 10_000, 'both names again on bob\'s page');
      await until(async () => (await names(alice.page)).sort().join() === 'Alice,Bob', 10_000, 'both names again on alice\'s page');
    } finally {
      await proxy.close();
      await server.close();
      await layer.close();
    }
  }, 90_000);

  (hasRedisServer() ? test : test.skip)('a server restart on Redis: the page recovers from Redis through the new server, each message once', async () => {
    const redis = await RedisServer.start();
    let layer = new RedisPubSubChannelLayer({ url: redis.url });
    let server = serve(layer);
    const { port } = await server.listen();
    const proxy = await TcpProxy.start({ port });
    try {
      const alice = await chatAs('Alice', 'restart', port);
      const bob = await chatAs('Bob', 'restart', proxy.port);
      await say(alice.page, 'before the restart');
      await until(async () => (await texts(bob.page)).length === 1, 10_000, 'bob sees the first message');
      proxy.cut(); // bob stays away for the whole restart
      await bob.page.locator('#state[data-state="reconnecting"]').waitFor({ timeout: 10_000 });

      await server.close();
      await layer.close();
      layer = new RedisPubSubChannelLayer({ url: redis.url });
      server = serve(layer, port);
      await server.listen();
      await alice.page.locator('#state[data-state="connected"]').waitFor({ timeout: 20_000 });
      for (const text of ['while away 1', 'while away 2', 'while away 3']) await say(alice.page, text);

      proxy.restore();
      await until(async () => (await texts(bob.page)).length >= 4, 20_000, 'bob catches up from Redis');
      expect(await texts(bob.page)).toEqual(['before the restart', 'while away 1', 'while away 2', 'while away 3']);
      expect(await texts(alice.page)).toEqual(['before the restart', 'while away 1', 'while away 2', 'while away 3']);
    } finally {
      await proxy.close();
      await server.close();
      await layer.close();
      await redis.close();
    }
  }, 90_000);
});
