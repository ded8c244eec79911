// WebsocketCommunicator: drives an application in a test with no socket, like Channels' communicator.
import { type Application, type Connection, HandshakeRejected, type Transport, NO_STATE, type Scope, type ScopeUser } from '../application';
import type { ChannelLayer } from '../layers/layer';
import { InMemoryChannelLayer } from '../layers/memory';
import { type Logger, createLogger } from '../logger';

export interface CommunicatorOptions {
  /** Request headers (lower-case names). */
  headers?: Record<string, string>;
  subprotocols?: string[];
  /** Default: a private InMemoryChannelLayer, closed by `disconnect()`. Pass one to group-send from the test. */
  channelLayer?: ChannelLayer;
  /** Preset `scope.user`, as if an auth middleware had run. */
  user?: ScopeUser;
  logger?: Logger;
}

export interface ConnectResult {
  connected: boolean;
  /** The subprotocol the consumer accepted with. */
  subprotocol?: string;
  /** The extra response headers the consumer accepted with (`accept({ headers })`), as [name, value] pairs. */
  headers?: [string, string][];
  /** HTTP status of a refused handshake: 403 closed before accept, 404 no route, 500 connect threw before accept (after it: connected, then close 1011). */
  status?: number;
}

type Output = { kind: 'frame'; data: string | Buffer } | { kind: 'close'; code: number; reason: string };

export class WebsocketCommunicator {
  private readonly outputs: Output[] = [];
  private waiting: (() => void) | null = null;
  private connection: Connection | null = null;
  private readonly ownsLayer: boolean;
  private readonly channelLayer: ChannelLayer;
  private accepted = false;
  private ended = false;

  constructor(
    private readonly app: Application,
    private readonly path: string,
    private readonly options: CommunicatorOptions = {},
  ) {
    this.ownsLayer = options.channelLayer === undefined;
    this.channelLayer = options.channelLayer ?? new InMemoryChannelLayer();
  }

  async connect(): Promise<ConnectResult> {
    const url = new URL(this.path, 'ws://testserver');
    const scope: Scope = {
      type: 'websocket',
      path: decodeURIComponent(url.pathname),
      pathRemaining: url.pathname,
      params: {},
      route: '',
      query: url.searchParams,
      headers: { host: 'testserver', ...this.options.headers },
      client: { address: '127.0.0.1', port: 0 },
      subprotocols: this.options.subprotocols ?? [],
      user: this.options.user ?? null,
      state: NO_STATE,
    };
    let subprotocol: string | undefined;
    let headers: [string, string][] | undefined;
    let refused = false;
    const transport: Transport = {
      accept: (chosen, extra) => {
        if (this.accepted || refused) return;
        this.accepted = true;
        subprotocol = chosen;
        if (extra) headers = extra.map(([name, value]) => [name, value]);
      },
      send: (data) => {
        if (this.accepted && !this.ended) this.push({ kind: 'frame', data });
      },
      close: (code = 1000, reason = '') => {
        if (!this.accepted) refused = true;
        else if (!this.ended) {
          this.push({ kind: 'close', code, reason });
          this.end(code);
        }
      },
    };
    try {
      this.connection = await this.app(scope, { channelLayer: this.channelLayer, logger: this.options.logger ?? createLogger() });
      await this.connection.open(transport);
    } catch (error) {
      if (error instanceof HandshakeRejected) return { connected: false, status: error.status };
      return { connected: false, status: 500 };
    }
    if (!this.accepted) return { connected: false, status: 403 };
    return headers ? { connected: true, subprotocol, headers } : { connected: true, subprotocol };
  }

  sendTo(data: string | Buffer): void {
    if (!this.connection || this.ended) throw new Error('communicator is not connected');
    this.connection.frame(data);
  }

  sendJsonTo(value: unknown): void {
    this.sendTo(JSON.stringify(value));
  }

  /** The next frame the consumer sent; throws on timeout or if the consumer closed instead. */
  async receiveFrom(timeoutMs = 1000): Promise<string | Buffer> {
    const output = await this.next(timeoutMs);
    if (output.kind === 'close') throw new Error(`consumer closed with ${output.code} (${output.reason}) instead of sending`);
    return output.data;
  }

  async receiveJsonFrom(timeoutMs = 1000): Promise<unknown> {
    const data = await this.receiveFrom(timeoutMs);
    if (typeof data !== 'string') throw new Error('expected a text frame, got a binary one');
    return JSON.parse(data);
  }

  /** The close code the consumer closed with; throws on timeout or if it sent a frame first. */
  async receiveClose(timeoutMs = 1000): Promise<number> {
    const output = await this.next(timeoutMs);
    if (output.kind !== 'close') throw new Error(`expected a close, got a frame: ${String(output.data)}`);
    return output.code;
  }

  /** True when the consumer sends nothing within `timeoutMs`. */
  async receiveNothing(timeoutMs = 100): Promise<boolean> {
    if (this.outputs.length > 0) return false;
    await this.wait(timeoutMs);
    return this.outputs.length === 0;
  }

  /** Ends the connection as a client would; resolves once disconnect handlers ran. */
  async disconnect(code = 1000): Promise<void> {
    if (this.connection && this.accepted && !this.ended) await this.end(code);
    if (this.ownsLayer) await this.channelLayer.close();
  }

  private end(code: number): Promise<void> {
    this.ended = true;
    return this.connection!.closed(code);
  }

  private push(output: Output): void {
    this.outputs.push(output);
    this.waiting?.();
  }

  private async next(timeoutMs: number): Promise<Output> {
    if (this.outputs.length === 0) await this.wait(timeoutMs);
    const output = this.outputs.shift();
    if (!output) throw new Error(`nothing received within ${timeoutMs} ms`);
    return output;
  }

  private wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.waiting = () => {
        this.waiting = null;
        done();
      };
    });
  }
}
