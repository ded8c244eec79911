// The HTTP + WebSocket server: upgrades, routing to consumers, limits, /healthz, /metrics and a draining close().
import { performance } from 'node:perf_hooks'; // not the global, which is a getter in Node
import cluster from 'node:cluster';
import { type IncomingMessage, type ServerResponse, createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Application, HandshakeRejected, type Runtime, type Scope, CloseCode } from '../application';
import { FrameCache } from './protocol';
import { FairInterval } from './fair-interval';
import { deflateSettings } from './permessage-deflate';
import { buildScope, destroyOnError, isValidUpgrade, loggablePath, rejectHandshake } from './handshake';
import { type ChannelLayer, LayerUnavailable } from '../layers/layer';
import { InMemoryChannelLayer } from '../layers/memory';
import { DroppedFrames } from './dropped-frames';
import { type Logger, createLogger } from '../logger';
import { PendingConnections } from './pending-connections';
import { RATE_LIMIT_DEFAULTS, type RateLimit } from './rate-limit';
import { type HttpHandler, SERVER_DEFAULTS, type ServerOptions } from './options';
import { SocketTransport, type TransportHost } from './transport';
import { ServerStats } from './stats';
import { MetricsEndpoint } from '../metrics/endpoint';
import type { MetricsJson } from '../metrics/server-metrics';

export class Server {
  readonly channelLayer: ChannelLayer;
  readonly logger: Logger;
  /** Frames not sent (over `maxOutboundFrame`, or to a slow reader under 'drop'), counted by reason. */
  readonly droppedFrames: DroppedFrames;
  /** Counts of frames, handshakes and disconnects, read by /metrics. */
  readonly stats = new ServerStats();
  private readonly metrics: MetricsEndpoint;
  private readonly options: typeof SERVER_DEFAULTS;
  private readonly app: Application;
  private readonly httpHandler: HttpHandler | undefined;
  private readonly ownsLayer: boolean;
  private readonly http: HttpServer;
  private readonly live = new Set<SocketTransport>();
  private readonly host: TransportHost;
  private allEnded: (() => void) | null = null;

  private readonly rateLimit: RateLimit | null;
  private readonly perAddress = new Map<string, number>();
  private handshakes = 0;
  /** Connections that have not finished their request headers. */
  private readonly pending: PendingConnections;
  private heartbeat: FairInterval | null = null;
  private messageCheck: FairInterval | null = null;
  private closing: Promise<void> | null = null;

  constructor(options: ServerOptions) {
    const { app, channelLayer, logger, http, rateLimit, metrics, perMessageDeflate, ...limits } = options;
    this.options = { ...SERVER_DEFAULTS, ...stripUndefined(limits) };
    this.rateLimit = rateLimit === false ? null : { ...RATE_LIMIT_DEFAULTS, ...stripUndefined(rateLimit ?? {}) };
    this.app = app;
    this.httpHandler = http;
    this.ownsLayer = channelLayer === undefined;
    this.channelLayer = channelLayer ?? new InMemoryChannelLayer();
    this.logger = logger ?? createLogger();
    this.runtime = { channelLayer: this.channelLayer, logger: this.logger };
    this.metrics = new MetricsEndpoint(metrics ?? true, this, this.logger, this.options.host);
    const { headersTimeout, maxPendingHandshakes, maxPendingHandshakesPerAddress } = this.options;
    this.pending = new PendingConnections(
      { maxPendingHandshakes, maxPendingHandshakesPerAddress, stallAfter: Math.min(1000, headersTimeout / 2) },
      this.logger,
    );
    this.http = createServer(
      {
        headersTimeout,
        requestTimeout: Math.max(this.options.requestTimeout, headersTimeout),
        // Node checks those timeouts only this often (by default every 30 s, which would double them).
        connectionsCheckingInterval: Math.min(1000, Math.max(50, headersTimeout / 4)),
      },
      (req, res) => void this.handleHttp(req, res),
    );
    this.http.on('connection', (socket: Socket) => this.pending.admit(socket, this.handshakes));
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.handleUpgrade(req, socket, head));
    this.http.on('clientError', answerClientError);
    const maxOutboundFrame = options.maxOutboundFrame ?? Math.max(4 * 1024 * 1024, this.options.maxPayload);
    this.droppedFrames = new DroppedFrames(this.logger, {
      oversize: { maxOutboundFrame },
      slowReader: { maxBufferedBytes: this.options.maxBufferedBytes },
    });
    const deflate = deflateSettings(perMessageDeflate);
    this.host = {
      frames: new FrameCache(deflate),
      deflate,
      maxBufferedBytes: this.options.maxBufferedBytes,
      slowReaderPolicy: this.options.slowReaderPolicy,
      rateLimit: this.rateLimit,
      maxOutboundFrame,
      stats: this.stats,
      dropped: (transport, reason, bytes, frames) => this.droppedFrames.record(reason, bytes, transport.scope.path, frames),
      upgrader: SocketTransport.createUpgrader(this.options.maxPayload, deflate),
      opened: (transport) => this.track(transport),
      ended: (transport, code) => this.ended(transport, code),
      socketError: (transport, error) => this.logger.debug({ err: error, path: transport.scope.path }, 'socket error'),
      flooded: (transport) =>
        this.logger.warn({ path: transport.scope.path, client: transport.scope.client.address }, 'rate limit exceeded; closing with 1008'),
      messageLate: (transport, pendingBytes) =>
        this.logger.info(
          { path: transport.scope.path, client: transport.scope.client.address, pendingBytes, timeoutMs: this.options.messageTimeout },
          'message not completed in time; closing with 1008',
        ),
    };
  }

  /** One object for every connection: consumers keep a pointer to it. */
  readonly runtime: Runtime;

  get connectionCount(): number {
    return this.live.size;
  }

  /**
   * TCP connections the server holds open: WebSockets, handshakes and HTTP requests in progress, idle
   * keep-alive connections, refused sockets not yet destroyed. Each holds a file descriptor.
   */
  socketCount(): Promise<number> {
    return new Promise((resolve, reject) => this.http.getConnections((error, count) => (error ? reject(error) : resolve(count))));
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
      this.heartbeat = new FairInterval(this.options.heartbeatInterval, (onTime) => this.beat(onTime));
    }
    if (this.options.messageTimeout > 0) {
      this.messageCheck = new FairInterval(this.options.messageTimeout, (onTime) => this.checkMessages(onTime));
    }
    await this.metrics.listen();
    const address = this.address();
    this.logger.info({ host: address.address, port: address.port }, 'listening');
    return address;
  }

  address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  /** Where /metrics listens when it has a port of its own (`metrics: { port }`); null otherwise. */
  metricsAddress(): AddressInfo | null {
    return this.metrics.address();
  }

  /**
   * This process's metrics as prom-client JSON, whatever /metrics serves: what each cluster worker hands
   * its primary, which sums them with `aggregateMetrics` (src/metrics/aggregate.ts).
   */
  metricsJson(): Promise<MetricsJson> {
    return this.metrics.json();
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
    this.heartbeat?.stop();
    this.messageCheck?.stop();
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
      for (const transport of this.live) transport.terminate();
    }
    this.http.closeAllConnections();
    await Promise.all([httpClosed, this.metrics.close()]);
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

  private beat(onTime: boolean): void {
    for (const transport of this.live) transport.beat(onTime);
  }

  /** Each socket checks its message in progress against `messageTimeout` (the check's period). */
  private checkMessages(onTime: boolean): void {
    for (const transport of this.live) transport.checkMessage(onTime);
  }

  private async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.pending.done(req.socket);
    try {
      const url = req.url ?? '/';
      if (url === '/healthz' || url === '/readyz') {
        const layer = this.channelLayer.health();
        const ready = layer.state === 'up' && !this.closing;
        // /healthz stays 200 while local delivery works; /readyz says whether to send traffic here.
        const status = url === '/healthz' ? (this.closing ? 503 : 200) : ready ? 200 : 503;
        respond(res, status, JSON.stringify({ status: ready ? 'ok' : 'degraded', connections: this.live.size, layer, pid: process.pid, worker: cluster.worker?.id }), 'application/json');
        return;
      }
      if (this.metrics.servesOnServerPort(url)) return await this.metrics.answer(req, res);
      if (this.httpHandler && (await this.httpHandler(req, res, this.runtime))) return;
      respond(res, 404, 'Not Found\n');
    } catch (error) {
      this.logger.error({ err: error, method: req.method, path: loggablePath(req.url) }, 'HTTP handler failed');
      if (!res.headersSent) respond(res, 500, 'Internal Server Error\n');
      else res.destroy();
    }
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // From here the `handshakes` count holds its place among the pending, until accepted or refused.
    this.pending.done(socket);
    // A client that resets mid-handshake must not become an unhandled 'error'.
    socket.on('error', destroyOnError);
    if (this.closing) return this.refuse(socket, 503, 'server is shutting down');
    if (!isValidUpgrade(req)) return this.refuse(socket, 400, 'invalid WebSocket handshake');
    if (this.live.size + this.handshakes >= this.options.maxConnections) {
      this.logger.warn({ max: this.options.maxConnections }, 'connection refused: server full');
      return this.refuse(socket, 503, 'server is full');
    }
    // Counted per address only under a limit (none by default).
    if (this.options.maxConnectionsPerAddress !== Infinity) {
      const address = req.socket.remoteAddress ?? '';
      const fromAddress = this.perAddress.get(address) ?? 0;
      if (fromAddress >= this.options.maxConnectionsPerAddress) {
        this.logger.warn({ client: address, max: this.options.maxConnectionsPerAddress }, 'connection refused: too many from this address');
        return this.refuse(socket, 429, 'too many connections from this address');
      }
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
      const transport = new SocketTransport(this.host, connection, started, req, socket, head);
      await connection.open(transport);
      if (!transport.accepted) {
        const why = transport.refused?.reason;
        throw new HandshakeRejected(403, `consumer refused the connection${why ? `: ${why}` : ''}`);
      }
    } catch (error) {
      if (error instanceof HandshakeRejected) {
        this.logger.info({ path: loggablePath(scope?.path ?? req.url), status: error.status, reason: error.message }, 'handshake rejected');
        this.refuse(socket, error.status, error.message);
      } else if (error instanceof LayerUnavailable) {
        // The layer is down (a groupAdd while Redis is unreachable): the client should retry later. Its
        // detail (which Redis, why) is for the log, not for the client.
        this.logger.warn({ err: error, path: loggablePath(scope?.path ?? req.url) }, 'handshake refused: channel layer unavailable');
        this.refuse(socket, 503, 'channel layer unavailable, try again later');
      } else {
        this.logger.error({ err: error, path: loggablePath(scope?.path ?? req.url) }, 'handshake failed');
        this.refuse(socket, 500, 'internal error');
      }
    } finally {
      this.handshakes--;
    }
  }

  /** A handshake refused with an HTTP status: counted, answered, closed. */
  private refuse(socket: Duplex, status: number, message: string): void {
    this.stats.handshake(status);
    rejectHandshake(socket, status, message);
  }

  /** An accepted socket: tracked until it ends. */
  private track(transport: SocketTransport): void {
    this.live.add(transport);
    this.stats.handshake(101);
    // Checked first: at the usual 'warn' the line's object would be built for nothing, twice per connection.
    if (!this.logger.isLevelEnabled('info')) return;
    const scope = transport.scope;
    this.logger.info({ event: 'connect', path: scope.path, route: scope.route, user: scope.user?.id ?? null, client: scope.client.address }, 'connect');
  }

  /** The socket closed and the consumer's disconnect handlers ran. */
  private ended(transport: SocketTransport, code: number): void {
    this.live.delete(transport);
    this.stats.disconnect(code);
    if (this.logger.isLevelEnabled('info')) {
      const scope = transport.scope;
      const durationMs = Math.round(performance.now()) - transport.started;
      this.logger.info({ event: 'disconnect', path: scope.path, route: scope.route, user: scope.user?.id ?? null, code, durationMs }, 'disconnect');
    }
    if (this.live.size === 0) this.allEnded?.();
  }
}

/** A request the HTTP parser refused (bad HTTP, headers too large, too slow): answer, then close. */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') rejectHandshake(socket, 408, 'request headers not received in time');
  else rejectHandshake(socket, 400, 'bad request');
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function respond(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
