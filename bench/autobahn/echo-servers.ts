// Autobahn|Testsuite targets: a channelkit echo consumer and a plain `ws` echo server, side by side, so a
// report tells channelkit's behaviour from ws's own. Ports from argv (default 9001 9002); a third argument
// `deflate` turns permessage-deflate on in both (channelkit compressing every payload, ws with its defaults).
import { WebSocketServer } from 'ws';
import { Server, WebsocketConsumer } from '../../src';

class Echo extends WebsocketConsumer {
  override receive(data: string | Buffer): void {
    this.send(data);
  }
}

const MAX_PAYLOAD = 16 * 1024 * 1024;

async function main(): Promise<void> {
  const [channelkitPort = 9001, wsPort = 9002] = process.argv.slice(2, 4).map(Number);
  const deflate = process.argv[4] === 'deflate';
  const server = new Server({
    app: async (scope, runtime) => new Echo(scope, runtime),
    port: channelkitPort,
    rateLimit: false,
    maxPayload: MAX_PAYLOAD,
    // Cases 9.* send messages of up to 16 MiB as fast as they are echoed: the slow-reader mark must not close them.
    maxBufferedBytes: 4 * MAX_PAYLOAD,
    // Threshold 0: every payload goes through the compressed path (one that would not shrink still goes plain).
    perMessageDeflate: deflate ? { threshold: 0 } : false,
  });
  await server.listen();
  const wss = new WebSocketServer({ host: '127.0.0.1', port: wsPort, perMessageDeflate: deflate, maxPayload: MAX_PAYLOAD });
  wss.on('connection', (ws) => {
    // ws reports a client's protocol error on 'error' after closing: without a listener it would end the process.
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  process.stdout.write(`echo servers${deflate ? ' (permessage-deflate)' : ''}: channelkit ws://127.0.0.1:${channelkitPort}, ws ws://127.0.0.1:${wsPort}\n`);
  const stop = (): void => {
    wss.close();
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

void main();
