// serveClientScript: channelkit/client as ES modules for a page, transpiled from src/client/ on request.
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CLIENT_SCRIPT_PATH, serveClientScript } from '../../src';

let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    void serveClientScript(res, new URL(req.url ?? '/', 'http://x').pathname).then((served) => {
      if (!served) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function get(path: string): Promise<{ status: number; type: string | null; body: string }> {
  const response = await fetch(base + path);
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
}

test('the entry re-exports the modules under /static/channelkit-client/, as JavaScript', async () => {
  expect(CLIENT_SCRIPT_PATH).toBe('/static/channelkit-client.js');
  const entry = await get(CLIENT_SCRIPT_PATH);
  expect(entry).toMatchObject({ status: 200, type: 'text/javascript; charset=utf-8' });
  expect(entry.body).toBe("export * from './channelkit-client/index.js';\n");
});

test('each module is the TypeScript source transpiled to an ES module: types gone, imports relative with .js', async () => {
  const room = await get('/static/channelkit-client/room.js');
  expect(room.status).toBe(200);
  expect(room.body).toMatch(/^import \{ Client \} from '\.\/client\.js';$/m);
  expect(room.body).toMatch(/^export class Room \{$/m);
  expect(room.body).not.toMatch(/private readonly|: Promise<|interface RoomOptions/);
  expect(room.body).toMatch(/sourceMappingURL=data:application\/json;base64,/);
  const index = await get('/static/channelkit-client/index.js');
  expect(index.body).toMatch(/export \{ Room \} from '\.\/room\.js';/);
  expect(index.body).not.toMatch(/export type/);
});

test('anything else under the prefix is not served: unknown modules, other names, paths out of the folder', async () => {
  for (const path of [
    '/static/channelkit-client/nope.js',
    '/static/channelkit-client/room.ts',
    '/static/channelkit-client/../client-script.js',
    '/static/channelkit-client/%2e%2e%2fserver%2fclient-script.js',
    '/static/channelkit-client/Room.js',
    '/static/other.js',
  ]) {
    expect([path, (await get(path)).status]).toEqual([path, 404]);
  }
});
