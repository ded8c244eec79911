// A TCP proxy for tests: cut every connection as a network loss would, then restore it, the server untouched.
// (Chromium's offline emulation does not close an open WebSocket; a cut here does, on both sides.)
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';

/** While cut, what happens to a new connection: reset at once ('refuse'), or accepted and kept waiting ('hold'). */
export type CutMode = 'refuse' | 'hold';

/**
 * `TcpProxy.start({ port })` listens on 127.0.0.1 and a free port and pipes each connection to the
 * target. `cut()` resets every connection it pipes (both ends see the connection die, with no
 * WebSocket close frame: a client's close code is 1006); until `restore()`, new connections are
 * refused (reset as soon as accepted) or held (accepted, nothing passes, then piped at `restore()`
 * with what the client had sent meanwhile).
 */
export class TcpProxy {
  /** Each piped client connection and its connection to the target. */
  private readonly piped = new Map<Socket, Socket>();
  private readonly held = new Set<Socket>();
  private mode: CutMode | null = null;

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (socket) => this.accepted(socket));
  }

  static async start(target: { host?: string; port: number }, port = 0): Promise<TcpProxy> {
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new TcpProxy(server, { host: target.host ?? '127.0.0.1', port: target.port });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Client connections piped now (held ones not counted). */
  get connections(): number {
    return this.piped.size;
  }

  /** Connections accepted during a 'hold' cut and waiting for restore(). */
  get waiting(): number {
    return this.held.size;
  }

  get isCut(): boolean {
    return this.mode !== null;
  }

  /** Resets every piped connection, both ends; new ones are refused or held until restore(). */
  cut(mode: CutMode = 'refuse'): void {
    this.mode = mode;
    for (const [client, upstream] of this.piped) {
      reset(client);
      reset(upstream);
    }
  }

  /** Passes traffic again; connections held by a 'hold' cut are piped now. */
  restore(): void {
    this.mode = null;
    for (const socket of this.held) {
      this.held.delete(socket);
      this.pipe(socket);
    }
  }

  /** Resets every connection, held or piped, and stops listening. */
  async close(): Promise<void> {
    this.mode = 'refuse';
    for (const socket of [...this.piped.keys(), ...this.piped.values(), ...this.held]) reset(socket);
    this.held.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accepted(socket: Socket): void {
    if (this.mode === 'refuse') return reset(socket);
    if (this.mode === 'hold') {
      this.held.add(socket);
      socket.on('error', () => {});
      socket.once('close', () => this.held.delete(socket));
      return;
    }
    this.pipe(socket);
  }

  /**
   * Pipes `client` to a new connection to the target. An end (FIN) passes through as an end, so a
   * WebSocket's closing handshake completes normally; an error on one side resets the other.
   */
  private pipe(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    this.piped.set(client, upstream);
    client.once('close', () => this.piped.delete(client));
    client.on('error', () => reset(upstream));
    upstream.on('error', () => reset(client));
    client.once('close', () => upstream.end());
    upstream.once('close', () => client.end());
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }
}

/** An RST rather than a FIN where the platform can: the peer sees the connection fail, not end politely. */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function' && socket.readyState !== 'opening') socket.resetAndDestroy();
  else socket.destroy();
}
