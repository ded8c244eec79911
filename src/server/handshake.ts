// The HTTP side of a WebSocket handshake: validating the request, building the scope, refusing it.
import { type IncomingHttpHeaders, type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { HandshakeRejected, NO_STATE, type ReadonlyQuery, type Scope } from '../application';

const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;
/** Shared by every connection with no query string: it refuses changes, as it serves them all. */
class EmptyQuery extends URLSearchParams {
  override append(): void {
    readOnly();
  }
  override delete(): void {
    readOnly();
  }
  override set(): void {
    readOnly();
  }
}
function readOnly(): never {
  throw new TypeError('scope.query is read-only; copy it first: new URLSearchParams(scope.query.toString())');
}
const NO_QUERY: ReadonlyQuery = new EmptyQuery();

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

/**
 * Headers that only serve the handshake: the server has acted on them, `scope.subprotocols` holds the
 * offered protocols, and every idle connection would keep them (bench/README.md, "Where the bytes go").
 */
const HANDSHAKE_HEADERS = new Set([
  'connection',
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
]);

/** A path the WHATWG URL parser would leave as is: no dot segment, nothing to decode or escape. */
const PLAIN_PATH = /^\/[\w\-~!$&'()*+,;=:@/.]*$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;

export function buildScope(req: IncomingMessage): Scope {
  const { path, pathRemaining, search } = splitTarget(req.url ?? '/');
  const offered = req.headers['sec-websocket-protocol'];
  return {
    type: 'websocket',
    path,
    pathRemaining,
    params: {},
    route: '',
    query: search.length > 1 ? new URLSearchParams(search) : NO_QUERY,
    headers: scopeHeaders(req.headers),
    client: { address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0 },
    subprotocols: offered ? offered.split(',').map((p) => p.trim()).filter(Boolean) : NO_SUBPROTOCOLS,
    user: null,
    state: NO_STATE,
  };
}

/**
 * The decoded path, the still-encoded path for the router, and the query string. A plain path (the
 * usual case) is used as the request gave it, so the scope holds no copy of it.
 */
function splitTarget(target: string): { path: string; pathRemaining: string; search: string } {
  const mark = target.indexOf('?');
  const rawPath = mark < 0 ? target : target.slice(0, mark);
  if (PLAIN_PATH.test(rawPath) && !DOT_SEGMENT.test(rawPath)) {
    return { path: rawPath, pathRemaining: rawPath, search: mark < 0 ? '' : target.slice(mark) };
  }
  const url = new URL(target, 'http://localhost');
  try {
    return { path: decodeURIComponent(url.pathname), pathRemaining: url.pathname, search: url.search };
  } catch {
    throw new HandshakeRejected(400, 'path is not valid percent-encoding');
  }
}

/**
 * Headers whose values most clients of a deployment share (the same host, origin, browsers): kept
 * once for all connections. Never cookies or credentials, which must not outlive their connection.
 */
const SHAREABLE_HEADERS = new Set(['host', 'origin', 'user-agent', 'accept-encoding', 'accept-language', 'cache-control', 'pragma']);
/** Bounded, so that odd clients cannot grow it; once full, new values are simply not shared. */
const sharedValues = new Map<string, string>();
const MAX_SHARED_VALUES = 1000;
const MAX_SHARED_LENGTH = 512;

function shared(value: string): string {
  const known = sharedValues.get(value);
  if (known !== undefined) return known;
  if (sharedValues.size < MAX_SHARED_VALUES && value.length <= MAX_SHARED_LENGTH) sharedValues.set(value, value);
  return value;
}

function scopeHeaders(all: IncomingHttpHeaders): IncomingHttpHeaders {
  const kept: IncomingHttpHeaders = {};
  for (const name in all) {
    if (HANDSHAKE_HEADERS.has(name)) continue;
    const value = all[name];
    kept[name] = typeof value === 'string' && SHAREABLE_HEADERS.has(name) ? shared(value) : value;
  }
  return kept;
}

/** Longest request path written to a log: a path is the client's to choose, up to the header size limit. */
const MAX_LOGGED_PATH = 200;

/**
 * A request target as it may be logged: the path without its query string (tokens travel there) and
 * cut to a bounded length. For requests that have no scope yet (an unparseable path) or none at all (pages).
 */
export function loggablePath(target: string | undefined): string {
  const raw = target ?? '';
  const mark = raw.indexOf('?');
  const path = mark < 0 ? raw : raw.slice(0, mark);
  return path.length <= MAX_LOGGED_PATH ? path : `${path.slice(0, MAX_LOGGED_PATH)}…`;
}

/** How long a refused client has to read its answer before its socket is destroyed. */
const REFUSAL_GRACE_MS = 1000;

/**
 * Answers a refused upgrade (or a bad request) with a plain HTTP response and closes the socket. Ending
 * is not enough: a client that never reads and never closes keeps the socket half-closed (FIN-WAIT-2)
 * and its file descriptor with it, so the socket is destroyed after a short grace.
 */
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
  setTimeout(destroyRefused, REFUSAL_GRACE_MS, socket).unref();
}

function destroyRefused(socket: Duplex): void {
  socket.destroy();
}

/**
 * A handshake socket's 'error' listener until ws takes the socket over: a client that resets
 * mid-handshake must not become an unhandled 'error'. Shared by every socket, rather than a closure each.
 */
export function destroyOnError(this: Duplex): void {
  this.destroy();
}
