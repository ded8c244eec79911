// The HTTP side of a WebSocket handshake: validating the request, building the scope, refusing it.
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { HandshakeRejected } from './application';
import type { Scope } from './scope';

const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;
/** Shared by every connection that offers none, instead of an empty array each. */
const NO_SUBPROTOCOLS: string[] = Object.freeze([]) as unknown as string[];

export function isValidUpgrade(req: IncomingMessage): boolean {
  // RFC 6455 §4.2.1: a handshake without Host is a bad request (Node checks Host only for plain requests).
  return (
    req.method === 'GET' &&
    typeof req.headers.host === 'string' &&
    (req.headers.upgrade ?? '').toLowerCase() === 'websocket' &&
    WS_KEY.test(String(req.headers['sec-websocket-key'] ?? '')) &&
    (req.headers['sec-websocket-version'] === '13' || req.headers['sec-websocket-version'] === '8')
  );
}

export function buildScope(req: IncomingMessage): Scope {
  const url = new URL(req.url ?? '/', 'http://localhost');
  let path: string;
  try {
    const decoded = decodeURIComponent(url.pathname);
    // Usually nothing was encoded: keep one string for both fields rather than an equal copy.
    path = decoded === url.pathname ? url.pathname : decoded;
  } catch {
    throw new HandshakeRejected(400, 'path is not valid percent-encoding');
  }
  const offered = req.headers['sec-websocket-protocol'];
  return {
    type: 'websocket',
    path,
    pathRemaining: url.pathname,
    params: {},
    route: '',
    // Its own URLSearchParams, so the scope does not keep the whole URL object alive per connection.
    query: new URLSearchParams(url.search),
    headers: req.headers,
    client: { address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0 },
    subprotocols: offered ? offered.split(',').map((p) => p.trim()).filter(Boolean) : NO_SUBPROTOCOLS,
    user: null,
    state: {},
  };
}

/** Answers a refused upgrade with a plain HTTP response and closes the socket. */
export function rejectHandshake(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
