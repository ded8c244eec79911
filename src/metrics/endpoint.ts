// GET /metrics: answered on the server's own port, or on a port of its own (METRICS_PORT) with nothing else there.
import { type IncomingMessage, type Server as HttpServer, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger';
import { type MetricsJson, type MetricsSource, ServerMetrics } from './server-metrics';

/** Where /metrics is served and what it answers; see `ServerOptions.metrics`. */
export interface MetricsOptions {
  /**
   * Serve /metrics on this port instead of the server's (0 picks a free one; see `Server.metricsAddress()`):
   * then the server's own port answers 404 there. Default: the server's port.
   */
  port?: number;
  /** Host of that port. Default: the server's `host`. */
  host?: string;
  /**
   * What /metrics answers instead of this process's metrics, in Prometheus' text format: a cluster
   * primary's sum over its workers (`aggregateMetrics`). Default: this process's metrics.
   */
  exposition?: () => Promise<string>;
}

const METRICS_PATH = '/metrics';

/** What /metrics answers, and the content type it is in. */
interface Exposition {
  readonly contentType: string;
  text(): Promise<string>;
}

/**
 * A server's /metrics: where it is served (the server's port, a port of its own, or nowhere) and what
 * it answers. The server asks it about each request and starts and stops it with itself.
 */
export class MetricsEndpoint {
  /** This process's metrics, whatever /metrics answers (a worker's share of a cluster's sum). */
  readonly local: ServerMetrics;
  private readonly exposition: Exposition;
  private readonly listener: MetricsListener | null;
  private readonly onServerPort: boolean;
  private readonly port: number | undefined;
  private readonly host: string | undefined;

  /** `options`: false for none, true for the server's port, or where and what (see MetricsOptions). */
  constructor(
    options: boolean | MetricsOptions,
    source: MetricsSource,
    logger: Logger,
    private readonly serverHost: string,
  ) {
    this.local = new ServerMetrics(source);
    const given = typeof options === 'object' ? options : {};
    const produce = given.exposition;
    this.exposition = produce ? { contentType: this.local.contentType, text: produce } : this.local;
    this.onServerPort = options === true || (options !== false && given.port === undefined);
    this.listener = options !== false && given.port !== undefined ? new MetricsListener(this.exposition, logger) : null;
    this.port = given.port;
    this.host = given.host;
  }

  /** Whether the server's own port answers this request target here. */
  servesOnServerPort(url: string): boolean {
    return this.onServerPort && isMetricsPath(url);
  }

  answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    return answerMetrics(req, res, this.exposition);
  }

  /** Opens the port of its own, when there is one. */
  async listen(): Promise<void> {
    await this.listener?.listen(this.port ?? 0, this.host ?? this.serverHost);
  }

  /** The port of its own, once listening; null when /metrics is on the server's port or off. */
  address(): AddressInfo | null {
    return this.listener?.address() ?? null;
  }

  json(): Promise<MetricsJson> {
    return this.local.json();
  }

  close(): Promise<void> {
    return this.listener?.close() ?? Promise.resolve();
  }
}

/** Whether `url` (a request target) is /metrics, with or without a query string. */
function isMetricsPath(url: string): boolean {
  return url === METRICS_PATH || url.startsWith(`${METRICS_PATH}?`);
}

/** Answers one /metrics request: GET and HEAD only, never cached. */
async function answerMetrics(req: IncomingMessage, res: ServerResponse, exposition: Exposition): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('Method Not Allowed\n');
    return;
  }
  const body = await exposition.text();
  res.writeHead(200, {
    'Content-Type': exposition.contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** /metrics on a port of its own (METRICS_PORT), so that it need not be reachable where clients connect. */
class MetricsListener {
  private readonly http: HttpServer;

  constructor(
    private readonly exposition: Exposition,
    private readonly logger: Logger,
  ) {
    this.http = createServer((req, res) => void this.handle(req, res));
  }

  async listen(port: number, host: string): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    const address = this.address();
    this.logger.info({ host: address.address, port: address.port }, 'metrics listening');
    return address;
  }

  address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  close(): Promise<void> {
    if (!this.http.listening) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    return closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (isMetricsPath(req.url ?? '/')) return await answerMetrics(req, res, this.exposition);
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Not Found\n');
    } catch (error) {
      this.logger.error({ err: error }, 'metrics failed');
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    }
  }
}
