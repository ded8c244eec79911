// A message must complete in time: a client that sends the first fragment of a big message and then only
// answers pings would otherwise hold its buffered fragments (up to maxPayload) for as long as it stays.
import WebSocket from 'ws';
import { Server, type ServerOptions, URLRouter, WebsocketConsumer, path } from '../../src';
import { Inbox, openClient } from '../support/sockets';
import { stallLoop, until } from '../support/wait';

class Echo extends WebsocketConsumer {
  override receive(data: string | Buffer): void {
    this.send(data);
  }
}

async function start(options: Partial<ServerOptions> = {}) {
  const server = new Server({ app: URLRouter([path('ws/echo/', Echo)]), port: 0, heartbeatInterval: 100, messageTimeout: 200, ...options });
  const { port } = await server.listen();
  return { server, base: `ws://127.0.0.1:${port}/ws/echo/` };
}

/** Counts the pings a client answers: each one is a heartbeat it lived through. */
function pingCounter(ws: WebSocket): () => number {
  let pings = 0;
  ws.on('ping', () => pings++);
  return () => pings;
}

describe('messageTimeout', () => {
  let server: Server;
  let base: string;
  const clients: WebSocket[] = [];
  afterEach(async () => {
    for (const ws of clients.splice(0)) ws.terminate();
    await server.close();
  });
  const client = async () => {
    const inbox = new Inbox(await openClient(base));
    clients.push(inbox.ws);
    return inbox;
  };

  test('a client that leaves a fragmented message unfinished, answering pings, is closed with 1008', async () => {
    ({ server, base } = await start({ heartbeatInterval: 100, messageTimeout: 300 }));
    const idle = await client();
    const idlePings = pingCounter(idle.ws);
    const busy = await client();
    const stuck = await client();
    const stuckPings = pingCounter(stuck.ws);
    stuck.ws.send(Buffer.alloc(256 * 1024, 1), { fin: false });
    let sent = 0;
    const talk = setInterval(() => busy.ws.send(`m${sent++}`), 20);
    try {
      const closed = await Promise.race([stuck.closed, new Promise((resolve) => setTimeout(resolve, 5000, 'still open after 5 s'))]);
      expect(closed).toEqual({ code: 1008, reason: 'message not completed in time' });
      // It answered pings all along: it was closed for the message, not for silence.
      expect(stuckPings()).toBeGreaterThanOrEqual(2);
      // The others live on through several more heartbeats.
      await until(() => idlePings() >= 8, 5000, 'eight heartbeats (and two message checks) for the idle client');
    } finally {
      clearInterval(talk);
    }
    expect(idle.ws.readyState).toBe(WebSocket.OPEN);
    expect(busy.ws.readyState).toBe(WebSocket.OPEN);
    idle.ws.send('idle still here');
    expect(await idle.next()).toBe('idle still here');
    for (let i = 0; i < sent; i++) expect(await busy.next()).toBe(`m${i}`);
  });

  test('a server loop that stalls past a check does not close a message whose last fragment it has not read yet', async () => {
    const period = 300;
    ({ server, base } = await start({ heartbeatInterval: 0, messageTimeout: period }));
    const listening = Date.now();
    const slow = await client();
    slow.ws.send('hello, ', { fin: false });
    // Checks run at about 300 and 600 ms after listen: the first finds the message in progress, and
    // the second, overdue after this process stalls, must not condemn it for a fragment still unread.
    await new Promise((resolve) => setTimeout(resolve, listening + 1.5 * period - Date.now()));
    slow.ws.send('world', { fin: true });
    stallLoop(2 * period);
    expect(await slow.next()).toBe('hello, world');
    expect(slow.ws.readyState).toBe(WebSocket.OPEN);
  });

  test('a fragmented message completed in time is delivered; pings from the client do not count as a message in progress', async () => {
    // The pinger sends far more control frames than the rate limit allows (they count against it): off here.
    ({ server, base } = await start({ messageTimeout: 400, rateLimit: false }));
    const slow = await client();
    const pinger = await client();
    const pingerPings = pingCounter(pinger.ws);
    slow.ws.send('hello, ', { fin: false });
    await until(() => pingerPings() >= 1, 2000, 'a heartbeat in the middle of the message');
    slow.ws.send('world', { fin: true });
    expect(await slow.next()).toBe('hello, world');
    // 2,000 client pings (about 200 KB of control frames) over many heartbeats, and no message at all. Ten at
    // a time: ws itself terminates a client with too many pings awaiting their pong (maxPendingAutoPongs).
    let pings = 0;
    const ping = setInterval(() => {
      for (let i = 0; i < 10; i++) pinger.ws.ping(Buffer.alloc(100));
      pings += 10;
    }, 10);
    try {
      await until(() => pings >= 2000 && pingerPings() >= 10, 10_000, 'pings over ten heartbeats');
    } finally {
      clearInterval(ping);
    }
    expect(pinger.ws.readyState).toBe(WebSocket.OPEN);
    pinger.ws.send('done');
    expect(await pinger.next()).toBe('done');
  });
});
