// The HTTP + WebSocket server: upgrades, routing to consumers, limits, /healthz and a draining close().
import { type IncomingMessage, type ServerResponse, createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { type Application, type Connection, HandshakeRejected, type Runtime } from './application';
import { FrameCache } from './frame';
import { buildScope, isValidUpgrade, rejectHandshake } from './handshake';
import type { ChannelLayer } from './layers/layer';
import { InMemoryChannelLayer } from './layers/memory';
import { type Logger, createLogger } from './logger';
import { RATE_LIMIT_DEFAULTS, type RateLimit } from './rate-limit';
import { SocketTransport, type TransportHost, TransportSocket } from './socket-transport';
import type { Scope } from './scope';
import { CloseCode } from './websocket';

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
  /** Interval of the ping/pong heartbeat, in ms; a peer silent for two intervals is terminated. Default 30,000; 0 disables. */
  heartbeatInterval?: number;
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
   * Largest frame sent to a client, in bytes. A bigger one is not sent: it is dropped and logged (at
   * most once per 10 s, with the count dropped), and the socket stays open. Default 4 MiB, or
   * `maxPayload` when that is larger: room for a client's largest frame echoed or wrapped in JSON, and
   * no more than one slow socket may queue (`maxBufferedBytes`).
   */
  maxOutboundFrame?: number;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 8000,
  maxPayload: 1024 * 1024,
  maxConnections: 10_000,
  heartbeatInterval: 30_000,
  drainTimeout: 10_000,
  maxBufferedBytes: 4 * 1024 * 1024,
  slowReaderPolicy: 'close' as 'close' | 'drop',
  maxConnectionsPerAddress: Infinity,
};

export class Server {
  readonly channelLayer: ChannelLayer;
  readonly logger: Logger;
  private readonly options: typeof DEFAULTS;
  private readonly app: Application;
  private readonly httpHandler: HttpHandler | undefined;
  private readonly ownsLayer: boolean;
  private readonly http: HttpServer;
  private readonly wss: WebSocketServer;
  private readonly live = new Set<SocketTransport>();
  private readonly host: TransportHost;
  private allEnded: (() => void) | null = null;
  private readonly chosenProtocol = new WeakMap<IncomingMessage, string>();

  private readonly rateLimit: RateLimit | null;
  private readonly perAddress = new Map<string, number>();
  private handshakes = 0;
  private heartbeat: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;

  constructor(options: ServerOptions) {
    const { app, channelLayer, logger, http, rateLimit, ...limits } = options;
    this.options = { ...DEFAULTS, ...stripUndefined(limits) };
    this.rateLimit = rateLimit === false ? null : { ...RATE_LIMIT_DEFAULTS, ...stripUndefined(rateLimit ?? {}) };
    this.app = app;
    this.httpHandler = http;
    this.ownsLayer = channelLayer === undefined;
    this.channelLayer = channelLayer ?? new InMemoryChannelLayer();
    this.logger = logger ?? createLogger();
    this.runtime = { channelLayer: this.channelLayer, logger: this.logger };
    this.http = createServer((req, res) => void this.handleHttp(req, res));
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.handleUpgrade(req, socket, head));
    this.http.on('clientError', (_error, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    const server = this;
    this.host = {
      frames: new FrameCache(),
      maxBufferedBytes: this.options.maxBufferedBytes,
      slowReaderPolicy: this.options.slowReaderPolicy,
      rateLimit: this.rateLimit,
      maxOutboundFrame: options.maxOutboundFrame ?? Math.max(4 * 1024 * 1024, this.options.maxPayload),
      // Dropped frames are counted and logged once per window: a group send would otherwise log per member.
      oversize: (() => {
        let dropped = 0;
        let loggedAt = -Infinity;
        return (transport: SocketTransport, bytes: number) => {
          dropped++;
          const now = performance.now();
          if (now - loggedAt < 10_000) return;
          loggedAt = now;
          this.logger.warn(
            { bytes, maxOutboundFrame: this.host.maxOutboundFrame, dropped, path: transport.scope.path },
            'frame over maxOutboundFrame not sent; raise maxOutboundFrame or send less',
          );
          dropped = 0;
        };
      })(),
      upgrade(req, socket, head, subprotocol, headers) {
        if (subprotocol !== undefined) server.chosenProtocol.set(req, subprotocol);
        let accepted: TransportSocket | null = null;
        // ws emits 'headers' just before writing the 101; the listener lives only for this upgrade.
        const addHeaders =
          headers &&
          ((lines: string[], request: IncomingMessage) => {
            if (request === req) for (const [name, value] of headers) lines.push(`${name}: ${value}`);
          });
        if (addHeaders) server.wss.on('headers', addHeaders);
        try {
          // With no verifyClient, ws completes the upgrade synchronously: `accepted` is set on return.
          server.wss.handleUpgrade(req, socket, head, (ws) => (accepted = ws as TransportSocket));
        } finally {
          if (addHeaders) server.wss.off('headers', addHeaders);
        }
        // ws handles the socket's errors from here on.
        socket.removeListener('error', destroySocket);
        return accepted;
      },
      opened: (transport) => this.track(transport),
      ended: (transport, code) => this.ended(transport, code),
      socketError: (transport, error) => this.logger.debug({ err: error, path: transport.scope.path }, 'socket error'),
      flooded: (transport) =>
        this.logger.warn({ path: transport.scope.path, client: transport.scope.client.address }, 'rate limit exceeded; closing with 1008'),
    };
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      WebSocket: TransportSocket,
      maxPayload: this.options.maxPayload,
      handleProtocols: (_offered, req) => this.chosenProtocol.get(req) ?? false,
    });
  }

  /** One object for every connection: consumers keep a pointer to it. */
  readonly runtime: Runtime;

  get connectionCount(): number {
    return this.live.size;
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    if (this.options.heartbeatInterval > 0) {
      this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatInterval);
    }
    const address = this.address();
    this.logger.info({ host: address.address, port: address.port }, 'listening');
    return address;
  }

  address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  /**
   * Drains: refuses new handshakes (503), closes every socket with 1001, waits for disconnect
   * handlers (up to `drainTimeout`, then terminates), stops the HTTP server and closes the layer
   * it created.
   */
  close(): Promise<void> {
    this.closing ??= this.drain();
    return this.closing;
  }

  private async drain(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const httpClosed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    const ended = new Promise<void>((resolve) => (this.allEnded = resolve));
    if (this.live.size === 0) this.allEnded?.();
    for (const transport of this.live) transport.close(CloseCode.goingAway, 'server shutdown');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      ended.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.options.drainTimeout))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn({ sockets: this.live.size }, 'drain timeout: terminating remaining sockets');
      for (const transport of this.live) transport.ws!.terminate();
    }
    this.http.closeAllConnections();
    await httpClosed;
    // A layer passed in is shared (other servers, Django, queued messages on the same Redis): a server
    // never flushes it, and leaves closing it to its owner.
    if (this.ownsLayer) await this.channelLayer.close();
    this.logger.info('closed');
  }

  private releaseAddress(address: string): void {
    const count = (this.perAddress.get(address) ?? 1) - 1;
    if (count <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, count);
  }

  private beat(): void {
    for (const transport of this.live) {
      if (!transport.alive) {
        transport.ws!.terminate();
        continue;
      }
      transport.alive = false;
      transport.ws!.ping();
    }
  }

  private async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = req.url ?? '/';
      if (url === '/healthz' || url === '/readyz') {
        const layer = this.channelLayer.health();
        const ready = layer.state === 'up' && !this.closing;
        // /healthz stays 200 while local delivery works; /readyz says whether to send traffic here.
        const status = url === '/healthz' ? (this.closing ? 503 : 200) : ready ? 200 : 503;
        respond(res, status, JSON.stringify({ status: ready ? 'ok' : 'degraded', connections: this.live.size, layer }), 'application/json');
        return;
      }
      if (this.httpHandler && (await this.httpHandler(req, res, this.runtime))) return;
      respond(res, 404, 'Not Found\n');
    } catch (error) {
      this.logger.error({ err: error, url: req.url }, 'HTTP handler failed');
      if (!res.headersSent) respond(res, 500, 'Internal Server Error\n');
      else res.destroy();
    }
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // A client that resets mid-handshake must not become an unhandled 'error'.
    socket.on('error', destroySocket);
    if (this.closing) return rejectHandshake(socket, 503, 'server is shutting down');
    if (!isValidUpgrade(req)) return rejectHandshake(socket, 400, 'invalid WebSocket handshake');
    if (this.live.size + this.handshakes >= this.options.maxConnections) {
      this.logger.warn({ max: this.options.maxConnections }, 'connection refused: server full');
      return rejectHandshake(socket, 503, 'server is full');
    }
    const address = req.socket.remoteAddress ?? '';
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (fromAddress >= this.options.maxConnectionsPerAddress) {
      this.logger.warn({ client: address, max: this.options.maxConnectionsPerAddress }, 'connection refused: too many from this address');
      return rejectHandshake(socket, 429, 'too many connections from this address');
    }
    if (this.options.maxConnectionsPerAddress !== Infinity) {
      this.perAddress.set(address, fromAddress + 1);
      // The address's count is released when the socket ends, whether or not the handshake succeeded.
      socket.once('close', () => this.releaseAddress(address));
    }
    this.handshakes++;
    // Whole milliseconds since the process started: a small integer, not a boxed number per connection.
    const started = Math.round(performance.now());
    let scope: Scope | undefined;
    try {
      scope = buildScope(req);
      const connection = await this.app(scope, this.runtime);
      await this.run(connection, req, socket, head, started);
    } catch (error) {
      if (error instanceof HandshakeRejected) {
        this.logger.info({ path: scope?.path ?? req.url, status: error.status, reason: error.message }, 'handshake rejected');
        rejectHandshake(socket, error.status, error.message);
      } else {
        this.logger.error({ err: error, path: scope?.path ?? req.url }, 'handshake failed');
        rejectHandshake(socket, 500, 'internal error');
      }
    } finally {
      this.handshakes--;
    }
  }

  private async run(connection: Connection, req: IncomingMessage, socket: Duplex, head: Buffer, started: number): Promise<void> {
    const transport = new SocketTransport(this.host, connection, started, req, socket, head);
    await connection.open(transport);
    if (!transport.ws) {
      const why = transport.refused?.reason;
      throw new HandshakeRejected(403, `consumer refused the connection${why ? `: ${why}` : ''}`);
    }
  }

  /** Wires an accepted socket to its connection, before any of its events can arrive. */
  private track(transport: SocketTransport): void {
    transport.ws!.transport = transport;
    this.live.add(transport);
    const scope = transport.scope;
    this.logger.info({ event: 'connect', path: scope.path, route: scope.route, user: scope.user?.id ?? null, client: scope.client.address }, 'connect');
  }

  /** The socket closed and the consumer's disconnect handlers ran. */
  private ended(transport: SocketTransport, code: number): void {
    this.live.delete(transport);
    const scope = transport.scope;
    const durationMs = Math.round(performance.now()) - transport.started;
    this.logger.info({ event: 'disconnect', path: scope.path, route: scope.route, user: scope.user?.id ?? null, code, durationMs }, 'disconnect');
    if (this.live.size === 0) this.allEnded?.();
  }
}

/** Shared by every handshake socket, rather than a closure each. */
function destroySocket(this: Duplex): void {
  this.destroy();
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function respond(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
