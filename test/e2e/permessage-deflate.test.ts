// The chat demo in Chromium with permessage-deflate on: what Chromium negotiates, and that the page shows what
// the room says, compressed once per group send.
import zlib from 'node:zlib';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createDemo } from '../../routing';
import { Server } from '../../src';
import { chromiumAvailable, launchChromium } from '../support/browser';

const suite = chromiumAvailable('permessage-deflate') ? describe : describe.skip;

suite('chat in Chromium with permessage-deflate', () => {
  let server: Server;
  let browser: Browser;
  let base: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    const { application, http } = createDemo({
      secret: 'deflate-test',
      demoPassword: 'demo password',
      pushSecret: 'push secret',
      development: false,
      allowedOrigins: ['127.0.0.1'],
    });
    // Threshold 0: every frame of the page goes compressed (presence, history, messages).
    server = new Server({ app: application, http, port: 0, heartbeatInterval: 0, perMessageDeflate: { threshold: 0 } });
    const { port } = await server.listen();
    base = `http://127.0.0.1:${port}`;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await Promise.all(contexts.map((context) => context.close()));
    await browser?.close();
    await server?.close();
  });

  /** The chat page of `room` as `name`, and the Sec-WebSocket-Extensions its socket's 101 carried. */
  async function chatAs(name: string, room: string): Promise<{ page: Page; extensions: Promise<string> }> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    const extensions = new Promise<string>((resolve) =>
      cdp.on('Network.webSocketHandshakeResponseReceived', (event) => {
        const headers = event.response.headers as Record<string, string>;
        const key = Object.keys(headers).find((k) => k.toLowerCase() === 'sec-websocket-extensions');
        resolve(key === undefined ? '' : headers[key]);
      }),
    );
    await page.goto(`${base}/chat/${room}/`);
    await page.locator('#name').fill(name);
    await page.locator('#name').press('Enter');
    await page.locator('#state[data-state="connected"]').waitFor({ timeout: 10_000 });
    return { page, extensions };
  }

  test('Chromium negotiates it with server_no_context_takeover; both pages show every message, each compressed once', async () => {
    const alice = await chatAs('alice', 'deflate');
    const bob = await chatAs('bob', 'deflate');
    for (const { extensions } of [alice, bob]) {
      await expect(extensions).resolves.toBe('permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    }
    const deflate = jest.spyOn(zlib, 'deflateRawSync');
    try {
      const texts = ['hello bob', `a longer one, ${'with some repetition '.repeat(40)}and accents: é à ü 😀`];
      for (const text of texts) {
        await alice.page.locator('#message').fill(text);
        await alice.page.locator('#message').press('Enter');
        for (const { page } of [alice, bob]) {
          const item = page.locator('#log li.message', { hasText: text.slice(0, 40) });
          await item.waitFor({ timeout: 10_000 });
          await expect(item.locator('.text').textContent()).resolves.toBe(text);
          await expect(item.locator('.name').textContent()).resolves.toBe('alice');
        }
      }
      // One compression per message frame for both members (the page's own frames may add presence diffs).
      const compressedTexts = deflate.mock.calls.filter(([input]) => texts.some((text) => Buffer.from(input as Buffer).toString().includes(text.slice(0, 20))));
      expect(compressedTexts).toHaveLength(texts.length);
    } finally {
      deflate.mockRestore();
    }
  });
});
