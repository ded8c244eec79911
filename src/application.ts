// The one type that routers, middleware and consumers share, so stacks compose with no special cases.
import type { IncomingHttpHeaders } from 'node:http';
import type { ChannelLayer } from './layers/layer';
import type { Logger } from './logger';

/**
 * What the server (or the test communicator) gives an application besides the scope: the process's
 * channel layer and logger.
 */
export interface Runtime {
  channelLayer: ChannelLayer;
  logger: Logger;
}

/** Extra headers of the handshake's 101 response, as [name, value] pairs, already checked by the consumer. */
export type ResponseHeaders = readonly (readonly [string, string])[];

/** What `accept()` may set in the handshake's response (Channels' `accept(subprotocol, headers)`). */
export interface AcceptOptions {
  /** One of `scope.subprotocols`. Default: none. */
  subprotocol?: string;
  /**
   * Extra response headers, as an object or as [name, value] pairs (pairs may repeat a name, as
   * Set-Cookie needs). Names and values must be valid HTTP; `Upgrade`, `Connection`, `Sec-WebSocket-*`,
   * `Content-Length` and `Transfer-Encoding` belong to the handshake and are refused. Default: none.
   */
  headers?: Readonly<Record<string, string>> | ResponseHeaders;
}

/** The consumer's view of its socket. The server implements it over `ws`; the communicator in memory. */
export interface Transport {
  /** Completes the handshake, optionally choosing one of `scope.subprotocols` and adding response headers. */
  accept(subprotocol?: string, headers?: ResponseHeaders): void;
  /** Sends a text (string) or binary (Buffer) frame. No effect once closed. */
  send(data: string | Buffer): void;
  /** Before `accept()`: rejects the handshake with HTTP 403. After: a close frame with `code`. */
  close(code?: number, reason?: string): void;
  /**
   * The connection has caught up after `frame()` returned false: read the client's frames again.
   * Optional: a transport without it does not pause (the communicator).
   */
  resume?(): void;
}

/** One connection's handler, created per connection by an application; consumers implement it. */
export interface Connection {
  /** The scope as the router left it (params, route), for logs. */
  readonly scope: Scope;
  /** Runs the consumer's connect step; it calls `transport.accept()` or `close()`. */
  open(transport: Transport): Promise<void>;
  /**
   * A frame from the client: string for text, Buffer for binary. Returns false while the connection is
   * behind (as a stream's `write()` does): the transport stops reading the client's frames (its TCP
   * window fills) until `transport.resume()`.
   */
  frame(data: string | Buffer): boolean | void;
  /** The socket ended with `code`; resolves when disconnect handlers ran and groups were left. */
  closed(code: number): Promise<void>;
}

/**
 * An application turns a scope into a connection handler, or refuses it by throwing
 * `HandshakeRejected` (the client gets that HTTP status). Routers and middleware are applications
 * that wrap applications; `path()` turns consumer classes into applications.
 */
export type Application = (scope: Scope, runtime: Runtime) => Promise<Connection>;

/** A middleware wraps an application into another, e.g. `authMiddleware(resolve)(router)`. */
export type Middleware = (inner: Application) => Application;

/** Thrown by an application to refuse a handshake with an HTTP status (403, 404, 503...). */
export class HandshakeRejected extends Error {
  readonly code = 'HANDSHAKE_REJECTED';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HandshakeRejected';
  }
}

// ---- The scope: one connection's facts ----

/** One route parameter: a string, or a number from the `int` converter (`:id(int)`). */
export type RouteParamValue = string | number;

/**
 * Route parameters: `path('ws/chat/:room/', ...)` puts `{ room: 'lobby' }` here, `:id(int)` a number.
 * Type them exactly with `RouteParamsOf<pattern>` as the consumer's type argument.
 */
export type RouteParams = Record<string, RouteParamValue>;

export interface Scope<Params extends RouteParams = RouteParams> {
  type: 'websocket';
  /** Decoded request path, with its leading slash: '/ws/chat/lobby/'. */
  path: string;
  /** What nested routers have not matched yet; the router reads and advances it. */
  pathRemaining: string;
  /** Route parameters collected by every router level. */
  params: Params;
  /** Patterns matched so far, joined: 'ws/chat/:room/'. Logged on connect and disconnect. */
  route: string;
  /** The query string's parameters; read-only (connections with no query share one empty instance). */
  query: ReadonlyQuery;
  /**
   * Lower-cased request headers, as Node gives them, less those only the handshake uses (connection,
   * upgrade, sec-websocket-key/-version/-extensions/-protocol; the offered protocols are in `subprotocols`).
   */
  headers: IncomingHttpHeaders;
  client: { address: string; port: number };
  /** Subprotocols the client offered, in its order; `accept(subprotocol)` picks one. */
  subprotocols: string[];
  /** Set by `authMiddleware`; null means anonymous. */
  user: ScopeUser | null;
  /**
   * Free space for middleware, which sets it as it sets `user`, on its copy of the scope:
   * `inner({ ...scope, state: { ...scope.state, tenant } }, runtime)`. It starts as one shared,
   * frozen empty object, so a connection with no state costs nothing for it.
   */
  state: Readonly<Record<string, unknown>>;
}

/** The `state` of a scope no middleware has given any. */
export const NO_STATE: Readonly<Record<string, unknown>> = Object.freeze({});

/** URLSearchParams without its mutators: a scope describes the request as it came. */
export type ReadonlyQuery = Omit<URLSearchParams, 'append' | 'delete' | 'set' | 'sort'>;

/** What an authenticated user looks like to the framework: an id, and whatever the app adds. */
export interface ScopeUser {
  id: string;
  [key: string]: unknown;
}

/** Close codes the framework uses (RFC 6455 and DESIGN.md). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policy: 1008,
  tooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
} as const;
