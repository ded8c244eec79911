import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { HandshakeRejected } from '../../src';
import { buildScope } from '../../src/server/handshake';

function request(url: string, headers: IncomingHttpHeaders = {}): IncomingMessage {
  return {
    url,
    headers: { host: 'example.test', upgrade: 'websocket', connection: 'Upgrade', ...headers },
    socket: { remoteAddress: '10.0.0.7', remotePort: 40000 },
  } as unknown as IncomingMessage;
}

describe('buildScope', () => {
  test('a plain path is used as given; the query is parsed', () => {
    const scope = buildScope(request('/ws/chat/lobby/?token=abc&x=1&x=2'));
    expect(scope.path).toBe('/ws/chat/lobby/');
    expect(scope.pathRemaining).toBe('/ws/chat/lobby/');
    expect(scope.query.get('token')).toBe('abc');
    expect(scope.query.getAll('x')).toEqual(['1', '2']);
    expect(scope.client).toEqual({ address: '10.0.0.7', port: 40000 });
  });

  test('percent-encoding is decoded in path, kept in pathRemaining for the router', () => {
    const scope = buildScope(request('/ws/chat/caf%C3%A9%2Fbar/'));
    expect(scope.path).toBe('/ws/chat/café/bar/');
    expect(scope.pathRemaining).toBe('/ws/chat/caf%C3%A9%2Fbar/');
  });

  test('dot segments are resolved as a URL parser would, not handed to the router', () => {
    expect(buildScope(request('/ws/chat/../admin/')).path).toBe('/ws/admin/');
    expect(buildScope(request('/ws/./chat/lobby/')).path).toBe('/ws/chat/lobby/');
    expect(buildScope(request('/ws/chat/%2e%2e/admin/')).path).toBe('/ws/admin/');
    // A dot inside a segment is an ordinary character.
    expect(buildScope(request('/ws/chat/v1.2/')).path).toBe('/ws/chat/v1.2/');
  });

  test('bad percent-encoding is refused with 400', () => {
    for (const url of ['/ws/chat/%E0%A4%A/', '/ws/%ff/']) {
      const thrown = (() => {
        try {
          buildScope(request(url));
        } catch (error) {
          return error;
        }
        return null;
      })();
      expect(thrown).toBeInstanceOf(HandshakeRejected);
      expect((thrown as HandshakeRejected).status).toBe(400);
    }
  });

  test('headers keep what the app may use and drop those only the handshake uses', () => {
    const scope = buildScope(
      request('/ws/x/', {
        origin: 'https://app.example',
        cookie: 'token=t',
        'user-agent': 'test',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '13',
        'sec-websocket-extensions': 'permessage-deflate',
        'sec-websocket-protocol': 'chat.v2, chat.v1',
      }),
    );
    expect(scope.headers).toEqual({ host: 'example.test', origin: 'https://app.example', cookie: 'token=t', 'user-agent': 'test' });
    expect(scope.subprotocols).toEqual(['chat.v2', 'chat.v1']);
  });

  test('connections without a query or state share read-only empty ones', () => {
    const [a, b] = [buildScope(request('/ws/a/')), buildScope(request('/ws/b/?'))];
    expect(a.query).toBe(b.query);
    expect([...a.query.keys()]).toEqual([]);
    expect(() => (a.query as URLSearchParams).set('leak', '1')).toThrow(/read-only/);
    expect(() => (a.query as URLSearchParams).append('leak', '1')).toThrow(/read-only/);
    expect(b.query.get('leak')).toBeNull();
    expect(a.state).toBe(b.state);
    expect(() => {
      (a.state as Record<string, unknown>).leak = 1;
    }).toThrow(TypeError);
  });

  test('a query is the connection\'s own', () => {
    const [a, b] = [buildScope(request('/ws/a/?n=1')), buildScope(request('/ws/a/?n=2'))];
    expect(a.query).not.toBe(b.query);
    expect([a.query.get('n'), b.query.get('n')]).toEqual(['1', '2']);
  });
});
