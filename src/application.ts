// The one type that routers, middleware and consumers share, so stacks compose with no special cases.
import type { ChannelLayer } from './layers/layer';
import type { Logger } from './logger';
import type { Scope } from './scope';

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
  /** Stop reading the client's frames (its TCP window fills): the consumer is behind. Optional. */
  pause?(): void;
  resume?(): void;
}

/** One connection's handler, created per connection by an application; consumers implement it. */
export interface Connection {
  /** The scope as the router left it (params, route), for logs. */
  readonly scope: Scope;
  /** Runs the consumer's connect step; it calls `transport.accept()` or `close()`. */
  open(transport: Transport): Promise<void>;
  /** A frame from the client: string for text, Buffer for binary. */
  frame(data: string | Buffer): void;
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
