// What the server writes to its log about refused and failed requests: never a query string or a token.
import { application } from '../../routing';
import { type HttpHandler, Server, URLRouter, WebsocketConsumer, path } from '../../src';
import { memoryLogger } from '../support/logs';
import { rawExchange } from '../support/sockets';

const handshake = (target: string, extra = '') =>
  `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

class Broken extends WebsocketConsumer {
  override connect(): void {
    throw new Error('bug in connect');
  }
}

const failingHttp: HttpHandler = () => {
  throw new Error('bug in a page handler');
};

describe('logs hold no query string or token', () => {
  const SECRET = 'S3CR3T-t0ken-value';
  let captured: ReturnType<typeof memoryLogger>;
  let server: Server;
  let port: number;
  beforeEach(() => (captured = memoryLogger()));
  afterEach(() => server.close());

  test('a handshake to an unparseable path logs the path, not its query', async () => {
    server = new Server({ app: application, logger: captured.logger, port: 0, heartbeatInterval: 0 });
    ({ port } = await server.listen());
    expect(await rawExchange(port, handshake(`/ws/notifications/%ZZ?token=${SECRET}`))).toMatch(/^HTTP\/1.1 400/);
    const rejected = captured.lines().find((line) => line.msg === 'handshake rejected');
    expect(rejected).toMatchObject({ path: '/ws/notifications/%ZZ', status: 400 });
    expect(captured.text()).not.toContain(SECRET);
    expect(captured.text()).not.toContain('token=');
  });

  test('a failed handshake, a failing page handler and unknown routes log no query', async () => {
    server = new Server({ app: URLRouter([path('ws/broken/', Broken)]), http: failingHttp, logger: captured.logger, port: 0, heartbeatInterval: 0 });
    ({ port } = await server.listen());
    expect(await rawExchange(port, handshake(`/ws/broken/?token=${SECRET}`))).toMatch(/^HTTP\/1.1 500/);
    expect(await rawExchange(port, handshake(`/ws/nowhere/?token=${SECRET}`))).toMatch(/^HTTP\/1.1 404/);
    expect(await rawExchange(port, handshake(`/ws/%E0%A4%A/?token=${SECRET}&password=${SECRET}`))).toMatch(/^HTTP\/1.1 400/);
    const page = await fetch(`http://127.0.0.1:${port}/account/?token=${SECRET}`);
    expect(page.status).toBe(500);
    await page.text();
    const lines = captured.lines();
    expect(lines.find((line) => line.msg === 'handshake failed')).toMatchObject({ path: '/ws/broken/' });
    expect(lines.find((line) => line.msg === 'HTTP handler failed')).toMatchObject({ path: '/account/' });
    expect(captured.text()).toContain('/ws/nowhere/');
    expect(captured.text()).toContain('/ws/%E0%A4%A/');
    expect(captured.text()).not.toContain(SECRET);
    expect(captured.text()).not.toContain('token=');
  });

  test('an attacker-sized path is logged truncated', async () => {
    server = new Server({ app: application, logger: captured.logger, port: 0, heartbeatInterval: 0 });
    ({ port } = await server.listen());
    expect(await rawExchange(port, handshake(`/ws/%ZZ${'a'.repeat(8000)}`))).toMatch(/^HTTP\/1.1 400/);
    expect(await rawExchange(port, handshake(`/ws/${'b'.repeat(8000)}/`))).toMatch(/^HTTP\/1.1 404/);
    const rejected = captured.lines().filter((line) => line.msg === 'handshake rejected');
    expect(rejected.map((line) => line.status)).toEqual([400, 404]);
    for (const line of rejected) expect(String(line.path).length).toBeLessThan(300);
  });
});
