// What the client needs from a WebSocket and from its host: the browser's globals, or what Node passes in.

/** What a `message` event carries: a string for a text frame (the browser's WebSocket and ws's both). */
export interface SocketMessageEvent {
  data: unknown;
}

export interface SocketCloseEvent {
  code: number;
  reason: string;
}

/**
 * A handler property. Written as a method so that ws's and the DOM's handler types (which take their
 * own, richer event classes) are assignable to it: the client only reads the fields named here.
 */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** The part of the WebSocket API the client drives: the browser's `WebSocket` and ws's class both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<SocketMessageEvent> | null;
  onclose: Handler<SocketCloseEvent> | null;
  onerror: Handler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** `WebSocket` in a browser; `WebSocket` from the `ws` package in Node (or a subclass that adds headers). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** readyState of an open socket (the same constant in the browser and in ws). */
export const OPEN = 1;

/** The host's globals the client may use, each looked up when used (so fake timers in tests apply). */
interface HostGlobals {
  WebSocket?: WebSocketConstructor;
  location?: { href: string };
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  reportError?: (error: unknown) => void;
}

export const host = globalThis as unknown as HostGlobals;

/**
 * An absolute ws:// or wss:// URL: ws(s) URLs as they are, http(s) ones with the matching scheme, and a
 * path ('/ws/chat/lobby/') against the page's address in a browser (wss:// on an https:// page).
 */
export function resolveUrl(url: string): string {
  const base = host.location?.href;
  let parsed: URL;
  try {
    parsed = new URL(url, base);
  } catch {
    throw new TypeError(`not a WebSocket URL: ${JSON.stringify(url)} (outside a browser, give ws://host:port/path)`);
  }
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new TypeError(`not a WebSocket URL: ${JSON.stringify(url)} (the scheme must be ws:, wss:, http: or https:)`);
  }
  return parsed.href;
}

/** Hands `error` to the host's error reporting without unwinding the caller (a listener's exception). */
export function reportLater(error: unknown): void {
  if (typeof host.reportError === 'function') host.reportError(error);
  else
    host.setTimeout(() => {
      throw error;
    }, 0);
}
