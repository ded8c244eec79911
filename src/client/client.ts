// A JSON WebSocket that stays connected: one socket at a time, backoff between attempts, a state the app sees.
import { Emitter, type Listener } from './emitter.js';
import { ClientError } from './errors.js';
import { RECONNECT_DEFAULTS, type ReconnectOptions, backoffDelay, isRetryable } from './reconnect.js';
import { OPEN, type WebSocketConstructor, type WebSocketLike, host, resolveUrl } from './web-socket.js';

/**
 * - `connecting`: the first attempt, before the client was ever open.
 * - `open`: a socket is open; `send()` works.
 * - `reconnecting`: waiting `delay` ms before retry number `attempt` of this outage, or making it.
 * - `closed`: final; nothing reconnects (see `ClosedBy`).
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Who ended the client: `close()` ('app'), a close code that is not retried ('server'), or maxAttempts retries that failed ('retries'). */
export type ClosedBy = 'app' | 'server' | 'retries';

/**
 * A state change, as the `state` event carries it. `code` and `reason` are the WebSocket close that
 * caused it (1006 for a handshake the server refused or a drop; 0 when no socket was made because the
 * `url` function failed or the WebSocket constructor threw).
 */
export type StateChange =
  | { state: 'connecting' }
  | { state: 'open' }
  | { state: 'reconnecting'; attempt: number; delay: number; code: number; reason: string }
  | { state: 'closed'; by: ClosedBy; code: number; reason: string };

export interface ClientEvents {
  state: StateChange;
  /** Each text frame, parsed as JSON. */
  message: unknown;
  /** Something the client recovered from by itself (a frame that is not JSON, a `url` function that failed). */
  error: ClientError;
}

/**
 * Where to connect: a ws://, wss://, http(s):// URL or, in a browser, a path on this page's host; or a
 * function called before every attempt (the first and each retry) that returns one, possibly as a
 * promise: the place to renew a token that the URL carries.
 */
export type UrlSource = string | (() => string | Promise<string>);

export interface ClientOptions extends ReconnectOptions {
  url: UrlSource;
  /** The WebSocket class. Default: the global one (browsers, Node 22+). In Node 20, pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Subprotocols offered in the handshake. Default none. */
  protocols?: string | string[];
  /** Ms an attempt may take to open before it is given up as failed (and retried). Default 10_000; 0: no limit. */
  connectTimeout?: number;
  /** In a browser, retry at once (skipping the rest of the delay) when the page goes back online. Default true. */
  retryWhenOnline?: boolean;
}

export const CLIENT_DEFAULTS = { ...RECONNECT_DEFAULTS, connectTimeout: 10_000, retryWhenOnline: true } as const;

/**
 * Keeps one JSON WebSocket open to `url`:
 * ```ts
 * const client = new Client({ url: '/ws/notifications/', maxAttempts: 20 });
 * client.on('state', (change) => console.log(change.state));
 * client.on('message', (value) => console.log(value));
 * client.send({ hello: 'world' }); // false while not open: nothing is queued
 * await client.close();
 * ```
 * It connects on the next microtask (so listeners added right after `new` see every state). After a
 * drop or a failed attempt it waits a jittered, doubling delay and calls `url` again; it never has two
 * sockets at once (the next attempt starts only once the previous socket's close event came).
 */
export class Client {
  private readonly emitter = new Emitter<ClientEvents>();
  private readonly source: UrlSource;
  private readonly WebSocket: WebSocketConstructor;
  private readonly protocols: string | string[] | undefined;
  private readonly initialDelay: number;
  private readonly maxDelay: number;
  private readonly maxAttempts: number;
  private readonly connectTimeout: number;
  private readonly retryable: (code: number, reason: string) => boolean;
  private readonly random: () => number;
  private readonly listensOnline: boolean;

  private change: StateChange = { state: 'connecting' };
  /** The one socket, from its creation until its close event. */
  private socket: WebSocketLike | null = null;
  private retryTimer: unknown = null;
  private connectTimer: unknown = null;
  /** The current socket was given up by connectTimeout (its close event then says only 1006). */
  private timedOut = false;
  /** Retries scheduled in this outage (0 while open); the backoff and maxAttempts count these. */
  private retries = 0;
  /** Bumped by every attempt and by the end: a `url` promise of an older attempt is ignored. */
  private generation = 0;
  /** reconnect() asked while a socket existed: connect again as soon as its close event comes. */
  private again = false;
  /** close() callers waiting for the last socket's close event. */
  private waiters: (() => void)[] = [];

  constructor(options: ClientOptions) {
    const WebSocketClass = options.WebSocket ?? host.WebSocket;
    if (WebSocketClass === undefined) {
      throw new TypeError("no WebSocket class: pass options.WebSocket (in Node 20: import { WebSocket } from 'ws')");
    }
    this.WebSocket = WebSocketClass;
    this.source = options.url;
    this.protocols = options.protocols;
    this.initialDelay = options.initialDelay ?? CLIENT_DEFAULTS.initialDelay;
    this.maxDelay = options.maxDelay ?? CLIENT_DEFAULTS.maxDelay;
    this.maxAttempts = options.maxAttempts ?? CLIENT_DEFAULTS.maxAttempts;
    this.connectTimeout = options.connectTimeout ?? CLIENT_DEFAULTS.connectTimeout;
    this.retryable = options.retryable ?? isRetryable;
    this.random = options.random ?? Math.random;
    this.listensOnline = (options.retryWhenOnline ?? CLIENT_DEFAULTS.retryWhenOnline) && typeof host.addEventListener === 'function';
    if (this.listensOnline) host.addEventListener!('online', this.online);
    void Promise.resolve().then(() => {
      if (this.change.state === 'closed') return;
      this.emitter.emit('state', this.change);
      this.attempt();
    });
  }

  get state(): ClientState {
    return this.change.state;
  }

  /** Listens to `state`, `message` or `error`; returns the function that stops listening. */
  on<K extends keyof ClientEvents>(type: K, listener: Listener<ClientEvents[K]>): () => void {
    return this.emitter.on(type, listener);
  }

  /** Sends `value` as one JSON text frame. Returns false, sending nothing, unless open (nothing is queued). */
  send(value: unknown): boolean {
    const socket = this.socket;
    if (socket === null || this.change.state !== 'open' || socket.readyState !== OPEN) return false;
    socket.send(JSON.stringify(value));
    return true;
  }

  /**
   * Connects again now: closes the open socket (1000) and makes a new attempt, with a fresh `url`,
   * once it is gone; while waiting to retry, retries at once. Does nothing once closed.
   */
  reconnect(): void {
    if (this.change.state === 'closed') return;
    if (this.retryTimer !== null) {
      host.clearTimeout(this.retryTimer);
      this.attempt();
    } else if (this.socket !== null) {
      this.again = true;
      closeSocket(this.socket, 1000, 'reconnecting');
    }
    // Otherwise the `url` function of an attempt is running: that attempt is the reconnection.
  }

  /**
   * Closes for good (state `closed`, `by: 'app'`) with `code` (1000, or 3000-4999 from a browser) and
   * `reason`; stops every timer. Resolves once the socket's close event came (at once without one).
   */
  close(code = 1000, reason = ''): Promise<void> {
    if (this.change.state !== 'closed') this.end('app', code, reason);
    if (this.socket === null) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private setState(change: StateChange): void {
    this.change = change;
    this.emitter.emit('state', change);
  }

  /** Calls `url`, then opens a socket to what it gave. */
  private attempt(): void {
    this.retryTimer = null;
    if (this.change.state === 'closed') return;
    const generation = ++this.generation;
    let url: Promise<string>;
    try {
      url = Promise.resolve(typeof this.source === 'function' ? this.source() : this.source);
    } catch (error) {
      url = Promise.reject(error);
    }
    url.then(
      (value) => {
        if (generation === this.generation) this.open(value);
      },
      (error: unknown) => {
        if (generation !== this.generation) return;
        this.emitter.emit('error', new ClientError('URL_FAILED', `the url function failed: ${messageOf(error)}`, error));
        this.failed(0, 'url function failed');
      },
    );
  }

  private open(url: string): void {
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocket(resolveUrl(url), this.protocols);
    } catch (error) {
      this.emitter.emit('error', new ClientError('SOCKET_FAILED', `could not open a WebSocket: ${messageOf(error)}`, error));
      this.failed(0, 'could not open a WebSocket');
      return;
    }
    this.socket = socket;
    this.timedOut = false;
    socket.onopen = () => this.opened(socket);
    socket.onmessage = (event) => this.received(socket, event.data);
    // Every error is followed by a close event, which decides; ws also needs a listener or it throws.
    socket.onerror = () => {};
    socket.onclose = (event) => this.socketClosed(socket, event.code, event.reason);
    if (this.connectTimeout > 0) {
      this.connectTimer = host.setTimeout(() => {
        this.connectTimer = null;
        this.timedOut = true;
        closeSocket(socket, 1000, 'connect timeout');
      }, this.connectTimeout);
    }
  }

  private opened(socket: WebSocketLike): void {
    if (socket !== this.socket || this.change.state === 'closed') return;
    this.clearConnectTimer();
    this.retries = 0;
    this.setState({ state: 'open' });
  }

  private received(socket: WebSocketLike, data: unknown): void {
    if (socket !== this.socket || this.change.state !== 'open') return;
    if (typeof data !== 'string') {
      this.emitter.emit('error', new ClientError('INVALID_FRAME', 'received a binary frame; the client takes JSON text frames only'));
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      this.emitter.emit('error', new ClientError('INVALID_FRAME', `received a frame that is not JSON: ${data.slice(0, 80)}`));
      return;
    }
    this.emitter.emit('message', value);
  }

  private socketClosed(socket: WebSocketLike, code: number, reason: string): void {
    if (socket !== this.socket) return;
    this.socket = null;
    socket.onopen = socket.onmessage = socket.onclose = null;
    this.clearConnectTimer();
    if (this.change.state === 'closed') {
      for (const resolve of this.waiters.splice(0)) resolve();
      return;
    }
    if (this.again) {
      this.again = false;
      this.retries = 1;
      this.setState({ state: 'reconnecting', attempt: 1, delay: 0, code, reason });
      this.attempt();
      return;
    }
    if (this.timedOut) reason = `no answer within ${this.connectTimeout} ms`;
    else if (!this.retryable(code, reason)) return this.end('server', code, reason);
    this.failed(code, reason);
  }

  /** An attempt failed or an open socket dropped: wait and retry, or give up after maxAttempts. */
  private failed(code: number, reason: string): void {
    if (this.retries >= this.maxAttempts) return this.end('retries', code, reason);
    this.retries++;
    const delay = backoffDelay(this.retries - 1, this.initialDelay, this.maxDelay, this.random);
    this.setState({ state: 'reconnecting', attempt: this.retries, delay, code, reason });
    this.retryTimer = host.setTimeout(() => this.attempt(), delay);
  }

  private end(by: ClosedBy, code: number, reason: string): void {
    this.generation++;
    if (this.retryTimer !== null) host.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.clearConnectTimer();
    if (this.listensOnline) host.removeEventListener?.('online', this.online);
    this.setState({ state: 'closed', by, code, reason });
    if (this.socket !== null) closeSocket(this.socket, code, reason);
  }

  private clearConnectTimer(): void {
    if (this.connectTimer !== null) host.clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  /** Back online: the wait was for a network that is now there. */
  private readonly online = (): void => {
    if (this.retryTimer === null) return;
    host.clearTimeout(this.retryTimer);
    this.attempt();
  };
}

/** A browser throws for codes other than 1000 and 3000-4999 and for long reasons: then close plainly. */
function closeSocket(socket: WebSocketLike, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    socket.close();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
