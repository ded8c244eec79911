// WebsocketConsumer and JsonWebsocketConsumer: one instance per connection, Channels' lifecycle.
import { Buffer } from 'node:buffer'; // not the global: Node's global Buffer is a getter, called at every use
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { type AcceptOptions, type Application, CloseCode, type Connection, type ResponseHeaders, type RouteParams, type Runtime, type Scope, type Transport } from '../application';
import { Consumer, markFrameworkClass } from './consumer';
import type { LayerMessage } from '../layers/layer';
import { Mailbox } from './mailbox';

/** The marker queued when the socket ends; frames are strings/Buffers and events plain objects. */
class Disconnect {
  constructor(
    readonly code: number,
    readonly done: () => void,
  ) {}
}

type Item = string | Buffer | LayerMessage | Disconnect;

/** Where a consumer is in its life; a handler can only fail once accepted (the mailbox is held until then). */
enum Phase {
  /** connect() is running. */
  connecting,
  /** Closed before accept(): the handshake is refused with 403. */
  refused,
  open,
  /** close() was called or the socket ended, after accept(). */
  closing,
  /** A handler threw: closing with 1011, nothing more is handled. */
  failed,
}

/**
 * Override `connect()` (default: accept), `receive(data)` and `disconnect(code)`. Layer messages are
 * dispatched by type to methods: `{ type: 'chat.message' }` calls `chatMessage(message)`. Frames and
 * events are handled one at a time, in arrival order. A handler that throws is logged and closes this
 * socket with 1011; nothing else is affected.
 */
export class WebsocketConsumer<Params extends RouteParams = RouteParams> extends Consumer implements Connection {
  /**
   * Layer events a consumer may hold unhandled; past it the layer sees its channel as full
   * (`send` throws ChannelFull, group sends skip it). Default 1000.
   */
  static mailboxCapacity = 1000;
  /**
   * Client frames a consumer may hold unhandled before the server stops reading its socket (TCP
   * backpressure to the client); reading resumes at half. Default 64.
   */
  static frameBacklog = 64;

  readonly scope: Scope<Params>;
  private transport: Transport | null = null;
  /** One field, not three booleans: every connection has one. */
  private phase: Phase = Phase.connecting;
  private readPaused = false;
  /**
   * Client frames queued and not yet handled. Counted apart from the mailbox's size, which also holds
   * layer events (the consumer's own group echoes among them): reading resumes when the frames drain,
   * whatever else is queued.
   */
  private pendingFrames = 0;
  /** Also the layer's listener of `channelName`: a full mailbox refuses events (the channel is full). */
  private readonly mailbox: Mailbox<Item>;

  constructor(scope: Scope, runtime: Runtime) {
    super(runtime);
    this.scope = scope as Scope<Params>;
    this.mailbox = new Mailbox<Item>(this, (this.constructor as typeof WebsocketConsumer).mailboxCapacity);
  }

  // ---- lifecycle: override these ----

  /** Called once the handshake arrives; accept, or close to refuse with HTTP 403. */
  connect(): unknown {
    this.accept();
    return undefined;
  }

  /** A frame from the client: a string for text frames, a Buffer for binary ones. */
  receive(_data: string | Buffer): unknown {
    return undefined;
  }

  /** The socket is gone (`code` is the close code); groups are left after this returns. */
  disconnect(_code: number): unknown {
    return undefined;
  }

  // ---- actions ----

  /**
   * Completes the handshake: `accept()`, `accept('v2')` (one of `scope.subprotocols`) or
   * `accept({ subprotocol, headers })` to add response headers. Headers that are not valid HTTP or
   * that belong to the handshake throw a TypeError, and nothing is accepted.
   */
  accept(options?: string | AcceptOptions): void {
    if (this.phase !== Phase.connecting) return;
    const subprotocol = typeof options === 'object' ? options.subprotocol : options;
    const headers = typeof options === 'object' && options.headers !== undefined ? responseHeaders(options.headers) : undefined;
    this.phase = Phase.open;
    this.transport!.accept(subprotocol, headers);
  }

  /** Closes with `code` (default 1000); before `accept()` it refuses the handshake with HTTP 403. */
  close(code: number = CloseCode.normal, reason?: string): void {
    if (this.closing) return;
    this.phase = this.accepted ? Phase.closing : Phase.refused;
    this.transport?.close(code, reason);
  }

  send(data: string | Buffer): void {
    this.transport!.send(data);
  }

  /** Sends `value` as a JSON text frame; a value with no JSON form throws a TypeError and sends nothing. */
  sendJson(value: unknown): void {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      // A BigInt, or a structure that contains itself.
      throw new TypeError(`sendJson: cannot encode the ${describe(value)} given as JSON (${(error as Error).message})`, { cause: error });
    }
    if (text === undefined) {
      throw new TypeError(`sendJson: ${describe(value)} has no JSON form; send an object, array, string, number, boolean or null`);
    }
    this.transport!.send(text);
  }

  // ---- Connection, driven by the server or the communicator ----

  async open(transport: Transport): Promise<void> {
    this.transport = transport;
    try {
      this.channelName = await this.channelLayer.newChannel();
      await this.channelLayer.listen(this.channelName, this.mailbox);
      if (this.hasStaticGroups) await this.joinStaticGroups();
      const connecting = this.connect();
      if (isThenable(connecting)) await connecting;
    } catch (error) {
      // Before accept() the handshake can still be refused (HTTP 500); after it the client has read
      // 101 Switching Protocols, so the failure is a handler error like any other: logged, close 1011,
      // and disconnect() runs when the socket ends.
      if (!this.accepted) {
        await this.teardown();
        throw error;
      }
      this.mailboxError(error);
    }
    if (!this.accepted) {
      if (!this.closing) this.close();
      await this.teardown();
      return;
    }
    this.mailbox.release();
  }

  frame(data: string | Buffer): boolean {
    if (this.failed) return true;
    this.pendingFrames++;
    this.mailbox.push(data);
    // Behind only with a transport that can be told to read again.
    if (!this.readPaused && this.pendingFrames >= this.frameBacklog() && this.transport?.resume) this.readPaused = true;
    return !this.readPaused;
  }

  closed(code: number): Promise<void> {
    if (!this.accepted) {
      this.phase = Phase.refused;
      return Promise.resolve();
    }
    if (this.phase === Phase.open) this.phase = Phase.closing;
    return new Promise((resolve) => this.mailbox.push(new Disconnect(code, resolve)));
  }

  private get accepted(): boolean {
    return this.phase >= Phase.open;
  }

  private get closing(): boolean {
    return this.phase === Phase.refused || this.phase >= Phase.closing;
  }

  /** A handler threw; nothing more is handled. */
  private get failed(): boolean {
    return this.phase === Phase.failed;
  }

  /** Read from the class when needed rather than copied into every instance. */
  private frameBacklog(): number {
    return (this.constructor as typeof WebsocketConsumer).frameBacklog;
  }

  /** @internal The mailbox hands each frame, event and the disconnect here, in order. */
  handleMailboxItem(item: Item): unknown {
    if (item instanceof Disconnect) return this.finish(item);
    if (typeof item === 'string' || Buffer.isBuffer(item)) {
      if (--this.pendingFrames <= this.frameBacklog() / 2 && this.readPaused) {
        this.readPaused = false;
        this.transport!.resume?.();
      }
      return this.failed ? undefined : this.receive(item);
    }
    return this.failed ? undefined : this.dispatch(item as LayerMessage);
  }

  private async finish(item: Disconnect): Promise<void> {
    try {
      const disconnecting = this.disconnect(item.code);
      if (isThenable(disconnecting)) await disconnecting;
    } catch (error) {
      this.logger.error({ err: error, path: this.scope.path }, 'disconnect handler failed');
    }
    try {
      await this.teardown();
    } finally {
      // The server counts the connection as ended only then: a teardown that throws must not leave it counted.
      item.done();
    }
  }

  /** @internal A handler threw: log it and close this socket with 1011. */
  mailboxError(error: unknown): void {
    if (this.failed) return;
    if (this.shouldLog(error)) this.logger.error({ err: error, path: this.scope.path, route: this.scope.route }, 'consumer error; closing with 1011');
    this.close(CloseCode.internalError, 'internal error');
    this.phase = Phase.failed;
  }

  private teardown(): Promise<void> {
    try {
      if (this.channelName) this.channelLayer.unlisten(this.channelName);
    } catch (error) {
      // The groups are left all the same: a membership kept here would outlive the connection.
      this.logger.error({ err: error, path: this.scope.path }, 'could not stop listening on the channel');
    }
    return this.leaveGroups();
  }
}

/**
 * Text frames are parsed as JSON and handed to `receiveJson(value)`. A frame that is not valid JSON
 * closes with 1007; a binary frame with 1003 (the RFC's code for a data type the endpoint refuses).
 */
export class JsonWebsocketConsumer<Params extends RouteParams = RouteParams> extends WebsocketConsumer<Params> {
  override receive(data: string | Buffer): unknown {
    if (typeof data !== 'string') {
      this.close(CloseCode.unsupportedData, 'binary frames are not accepted');
      return undefined;
    }
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      this.close(CloseCode.invalidPayload, 'invalid JSON');
      return undefined;
    }
    return this.receiveJson(value);
  }

  /** A parsed JSON frame. Validate it: it comes from the client. */
  receiveJson(_value: unknown): unknown {
    return undefined;
  }
}

markFrameworkClass(WebsocketConsumer);
markFrameworkClass(JsonWebsocketConsumer);

/** Response headers that ws writes itself, or that would make the 101 response mean something else. */
const HANDSHAKE_HEADER = /^(?:upgrade|connection|content-length|transfer-encoding|sec-websocket-.*)$/i;

/** Checks `accept()`'s headers and returns them as pairs. */
function responseHeaders(headers: NonNullable<AcceptOptions['headers']>): ResponseHeaders {
  const pairs: ResponseHeaders = Array.isArray(headers) ? headers : Object.entries(headers);
  for (const [name, value] of pairs) {
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch (error) {
      throw new TypeError(`accept: response header ${JSON.stringify(String(name).slice(0, 100))} is not valid HTTP (${(error as Error).message})`, { cause: error });
    }
    if (HANDSHAKE_HEADER.test(name)) {
      throw new TypeError(`accept: response header ${JSON.stringify(name)} belongs to the WebSocket handshake and cannot be set`);
    }
  }
  return pairs;
}

/**
 * Whether a lifecycle handler returned something to wait for. One that returned synchronously (the
 * default `connect()` and `disconnect()`) is not awaited: an await costs a promise and a turn of the
 * microtask queue, per connection.
 */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/** What a value is, for an error message, without echoing its content. */
function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value === 'object' ? `object (${value.constructor?.name ?? 'no prototype'})` : typeof value;
}

/** A consumer class, as given to `path()`. */
export type ConsumerClass = new (scope: Scope, runtime: Runtime) => Connection;

export function isConsumerClass(value: unknown): value is ConsumerClass {
  return typeof value === 'function' && value.prototype instanceof WebsocketConsumer;
}

/** Wraps a consumer class into an application: one instance per connection. */
export function asApplication(cls: ConsumerClass): Application {
  return async (scope, runtime) => new cls(scope, runtime);
}
