// The server's options, each with its default and meaning, and the defaults applied once.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Application, Runtime } from '../application';
import type { ChannelLayer } from '../layers/layer';
import type { Logger } from '../logger';
import type { MetricsOptions } from '../metrics/endpoint';
import type { PerMessageDeflateOptions } from './permessage-deflate';
import type { RateLimit } from './rate-limit';

/**
 * App-specific HTTP routes (pages, token issuing...). Return true when the request was handled;
 * false lets the server answer 404.
 */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse, runtime: Runtime) => boolean | Promise<boolean>;

export interface ServerOptions {
  /** The application (router, middleware stack or consumer app) that serves WebSocket connections. */
  app: Application;
  /** Default: a new `InMemoryChannelLayer`, closed by `close()`. A layer passed in is left open. */
  channelLayer?: ChannelLayer;
  /** Default: pino at LOG_LEVEL. */
  logger?: Logger;
  /** Pages and other HTTP routes; `/healthz` and `/readyz` are built in. */
  http?: HttpHandler;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 8000; 0 picks a free port (see `address()`). */
  port?: number;
  /** Largest frame accepted, in bytes; a bigger one closes the socket with 1009. Default 1 MiB. */
  maxPayload?: number;
  /** Open sockets (and handshakes in progress) per process; past it handshakes get HTTP 503. Default 10,000. */
  maxConnections?: number;
  /**
   * Interval of the ping/pong heartbeat, in ms; a peer that has not answered the ping of the previous
   * beat is terminated (so after one to two intervals), except at a beat made late by a stalled loop.
   * Default 30,000; 0 disables.
   */
  heartbeatInterval?: number;
  /**
   * Time a client has to complete a message once it has started sending it (all fragments of a fragmented
   * one), in ms; past it, close 1008. Checked every `messageTimeout`, so a message is closed after one to
   * two times this. Keeps a client from holding a half-sent message (up to `maxPayload`) for as long as it
   * answers pings. A message sent in one frame over a slow link counts too: raise it for large uploads on
   * slow links. Default 30,000; 0 disables.
   */
  messageTimeout?: number;
  /** How long `close()` waits for sockets to close and disconnect handlers to end, in ms. Default 10,000. */
  drainTimeout?: number;
  /**
   * Bytes a socket may have queued unsent (its reader is slow) before the server acts. Default 4 MiB.
   * Keeps one stalled client from growing the process without bound.
   */
  maxBufferedBytes?: number;
  /**
   * What to do at `maxBufferedBytes`: 'close' (default) sends 1013 and drops the socket one second
   * later if the close frame cannot get through (a stalled reader); 'drop' skips the frame.
   */
  slowReaderPolicy?: 'close' | 'drop';
  /** Per-connection limits on client frames and bytes (token buckets); past them, close 1008. `false` disables. */
  rateLimit?: Partial<RateLimit> | false;
  /** Open sockets and handshakes per client address; past it, HTTP 429. Default unlimited (proxies share addresses). */
  maxConnectionsPerAddress?: number;
  /**
   * Connections still "pending": they have not finished their request headers, or their WebSocket
   * handshake is still being decided (middleware, `connect()`). Past it, while the oldest pending
   * connection has waited over a second (`headersTimeout` / 2 when shorter), a new TCP connection is
   * closed at once, unanswered, and the drops are logged (at most every 10 s). A burst of connections
   * accepted together is let in up to four times this. Bounds floods of clients that open connections
   * and send nothing or trickle their headers. Default 1,000.
   */
  maxPendingHandshakes?: number;
  /**
   * Connections from one address that have not finished their request headers; past it, under the
   * same rule, a new one from that address is closed at once. Default 100.
   */
  maxPendingHandshakesPerAddress?: number;
  /**
   * How long a connection may take to send its request headers, in ms (Node's own default is 60 s);
   * past it, HTTP 408 and closed. Also bounds connections that send nothing. Default 10,000.
   */
  headersTimeout?: number;
  /** How long a whole HTTP request (headers and body) may take, in ms; never less than `headersTimeout`. Default 30,000. */
  requestTimeout?: number;
  /**
   * Largest frame sent to a client, in bytes. A bigger one is not sent: it is dropped and logged (at
   * most once per 10 s, with the count dropped), and the socket stays open. Default 4 MiB, or
   * `maxPayload` when that is larger: room for a client's largest frame echoed or wrapped in JSON, and
   * no more than one slow socket may queue (`maxBufferedBytes`).
   */
  maxOutboundFrame?: number;
  /**
   * `GET /metrics` in Prometheus' text format (this process's default metrics and the server's and its
   * layer's `channelkit_*` counts). true: on the server's port; false: off (404); `{ port }`: on a port of
   * its own and not on the server's. The counts are kept either way (plain integers). Default true.
   */
  metrics?: boolean | MetricsOptions;
  /**
   * permessage-deflate (RFC 7692), used with clients that offer it (browsers do). Off by default. When on, the
   * 101 answers an offer with `server_no_context_takeover` (and `client_no_context_takeover`, see the options)
   * and honours the client's `server_max_window_bits`; each payload at or over `threshold` is compressed once,
   * and that one frame goes to every member of a group send. `maxPayload` bounds a client message's inflated
   * size (1009 past it); `maxOutboundFrame` applies to the uncompressed size. true: on with the defaults of
   * `PerMessageDeflateOptions`. Default false.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
}

export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 8000,
  maxPayload: 1024 * 1024,
  maxConnections: 10_000,
  heartbeatInterval: 30_000,
  messageTimeout: 30_000,
  drainTimeout: 10_000,
  maxBufferedBytes: 4 * 1024 * 1024,
  slowReaderPolicy: 'close' as 'close' | 'drop',
  maxConnectionsPerAddress: Infinity,
  maxPendingHandshakes: 1000,
  maxPendingHandshakesPerAddress: 100,
  headersTimeout: 10_000,
  requestTimeout: 30_000,
};
