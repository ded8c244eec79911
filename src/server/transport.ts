// One connection's socket from upgrade to end: completes the upgrade, sends coalesced frames, applies the
// rate limit and flow control to what it reads, runs its heartbeat and message-timeout steps, closes.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { type Connection, type ResponseHeaders, type Transport, type Scope, CloseCode } from '../application';
import type { DropReason } from './dropped-frames';
import { type FrameCache, payloadLength } from './protocol';
import { type DeflateSettings, narrowOffer, upgraderDeflateOptions } from './permessage-deflate';
import { Outbox } from './outbox';
import { ConnectionRateLimiter, type RateLimit } from './rate-limit';
import { destroyOnError } from './handshake';
import type { ServerStats } from './stats';

/** What every transport of one server shares; one object, so a connection holds one pointer to it. */
export interface TransportHost {
  readonly frames: FrameCache;
  /** permessage-deflate's settings; null when the server does not offer it. */
  readonly deflate: DeflateSettings | null;
  readonly maxBufferedBytes: number;
  readonly slowReaderPolicy: 'close' | 'drop';
  readonly rateLimit: RateLimit | null;
  /** Largest payload sent to a client, in bytes (the server's `maxOutboundFrame`). */
  readonly maxOutboundFrame: number;
  /** The server's counts (frames in and out, slow-reader closes), bumped here for /metrics. */
  readonly stats: ServerStats;
  /**
   * Frames were not sent: one over `maxOutboundFrame` (`bytes` at least its payload size), or `frames`
   * (default one) of `bytes` bytes in all to a slow reader.
   */
  dropped(transport: SocketTransport, reason: DropReason, bytes: number, frames?: number): void;
  /** Completes upgrades for the transports (made by `createUpgrader`); they call it themselves. */
  readonly upgrader: WebSocketServer;
  /** The socket is accepted: start tracking it. */
  opened(transport: SocketTransport): void;
  /** A client went past its rate limit. */
  flooded(transport: SocketTransport): void;
  /** A message in progress has not completed in time (`pendingBytes` read of it): the transport closes it. */
  messageLate(transport: SocketTransport, pendingBytes: number): void;
  /** The socket closed and the connection's disconnect handlers ran. */
  ended(transport: SocketTransport, code: number): void;
  socketError(transport: SocketTransport, error: Error): void;
}

/**
 * How long a socket closed for reading too slowly, for flooding, or for stalling mid-message, may take
 * to finish closing before it is dropped: none can be trusted to read the close frame or answer it.
 */
const CLOSE_GRACE_MS = 1000;

/** The handshake a transport holds until it accepts or refuses; released then. */
interface Handshake {
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  /** Set by accept(): what the 101 response carries. */
  subprotocol: string | undefined;
  headers: ResponseHeaders | undefined;
}

/**
 * The transport completing an upgrade, on the request it upgrades: ws's hooks (handleProtocols, the
 * 'headers' event, the upgrade callback) are given only the request, and find the transport there.
 */
const UPGRADING = Symbol('channelkit.upgrading');
type UpgradingRequest = IncomingMessage & { [UPGRADING]?: SocketTransport };

function destroyFinished(this: Socket): void {
  this.destroy();
}

function terminateSocket(ws: WebSocket): void {
  ws.terminate();
}

/**
 * Kept small on purpose: one instance per connection, methods on the prototype and no closures, so
 * an idle connection costs little. It is its socket's outbox (a subclass, not a second object per
 * connection). The handshake request is released as soon as it is answered.
 */
export class SocketTransport extends Outbox implements Transport {
  private ws: TransportSocket | null = null;
  refused: { code: number; reason: string } | null = null;
  /** Cleared by each heartbeat, set by each pong. */
  alive = true;
  /** Made on the first frame: an idle connection needs none, and a new bucket starts full anyway. */
  private limiter: ConnectionRateLimiter | null = null;
  private flooded = false;
  /** The window permessage-deflate was negotiated with, in bits; 0 without the extension (frames go plain). */
  private deflateBits = 0;
  private handshake: Handshake | null;

  constructor(
    private readonly host: TransportHost,
    readonly connection: Connection,
    readonly started: number,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ) {
    super();
    this.handshake = { req, socket, head, subprotocol: undefined, headers: undefined };
  }

  /**
   * The `ws` server every transport of one server upgrades through. No `verifyClient`: the handshake has
   * been decided before accept(), and without it ws completes (or aborts) the upgrade before
   * handleUpgrade() returns, so accept() has its socket, or knows it has none, when it returns.
   */
  static createUpgrader(maxPayload: number, deflate: DeflateSettings | null = null): WebSocketServer {
    const upgrader = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      // ws negotiates the extension and inflates what clients send (maxPayload bounds the inflated size).
      perMessageDeflate: deflate === null ? false : upgraderDeflateOptions(deflate),
      WebSocket: TransportSocket,
      maxPayload,
      handleProtocols: SocketTransport.chosenProtocol,
    });
    upgrader.on('headers', SocketTransport.addResponseHeaders);
    return upgrader;
  }

  /** ws's upgrade callback: shared by every upgrade, rather than a closure each. */
  private static upgraded(this: void, ws: WebSocket, req: UpgradingRequest): void {
    req[UPGRADING]?.opened(ws as TransportSocket);
  }

  /** ws's handleProtocols: the subprotocol the consumer chose, or none (never ws's default, the first offered). */
  private static chosenProtocol(this: void, _offered: Set<string>, req: UpgradingRequest): string | false {
    return req[UPGRADING]?.handshake?.subprotocol ?? false;
  }

  /** ws emits 'headers' just before writing the 101: the consumer's extra headers go in. */
  private static addResponseHeaders(this: void, lines: string[], req: UpgradingRequest): void {
    const headers = req[UPGRADING]?.handshake?.headers;
    if (headers) for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  }

  /** Whether accept() completed the upgrade: the socket is this transport's from here to its end. */
  get accepted(): boolean {
    return this.ws !== null;
  }

  /** The connection's scope (kept there, not twice per connection). */
  get scope(): Scope {
    return this.connection.scope;
  }

  accept(subprotocol?: string, headers?: ResponseHeaders): void {
    const handshake = this.handshake;
    if (this.ws || this.refused || !handshake) return;
    handshake.subprotocol = subprotocol;
    handshake.headers = headers;
    const req = handshake.req as UpgradingRequest;
    if (this.host.deflate !== null) this.deflateBits = narrowOffer(req, this.host.deflate);
    req[UPGRADING] = this;
    try {
      this.host.upgrader.handleUpgrade(req, handshake.socket, handshake.head, SocketTransport.upgraded);
    } finally {
      // The request is released with the handshake; cleared anyway, as ws may have aborted the upgrade.
      req[UPGRADING] = undefined;
      this.handshake = null;
    }
  }

  /** ws completed the upgrade: wired before the socket can emit anything but 'open'. */
  private opened(ws: TransportSocket): void {
    // ws handles the socket's errors from here on.
    this.handshake!.socket.removeListener('error', destroyOnError);
    this.ws = ws;
    ws.transport = this;
    this.attach(this.rawSocket);
    // The handshake's bytes are behind us: from here on, what is read is frames.
    this.readMark = this.rawSocket.bytesRead;
    this.host.opened(this);
  }

  send(data: string | Buffer): void {
    // Whether the socket is still open, and what its own buffer holds, is checked when the turn's frames
    // are written (flush): here only what this turn queued counts, which bounds a burst within a turn.
    if (this.ws === null) return;
    if (this.pendingBytes > this.host.maxBufferedBytes) {
      this.overBacklog(1, data.length);
      return;
    }
    // Over the cap, the frame is dropped and counted (the server logs it), not thrown: its size comes
    // from the message, so in a group send every member would throw and close with 1011, and one
    // oversize message, which a client can provoke, would empty a whole group of its sockets.
    // A string's UTF-8 size is at least its length, so the common case costs one comparison.
    const cap = this.host.maxOutboundFrame;
    if (data.length > cap) return this.host.dropped(this, 'oversize', data.length);
    // Bypasses ws's sender for data frames: built once per payload, written once per turn.
    const frame = this.host.frames.frame(data);
    if (frame.length > cap && payloadLength(frame) > cap) return this.host.dropped(this, 'oversize', payloadLength(frame));
    this.push(this.deflateBits === 0 ? frame : this.host.frames.compressed(frame, this.deflateBits));
  }

  close(code: number = CloseCode.normal, reason?: string): void {
    if (this.ws) {
      this.ws.close(code, reason);
    } else {
      this.refused ??= { code, reason: reason ?? '' };
      this.handshake = null;
    }
  }

  /** Only while open: a closing socket keeps reading, so that the client's close reply is read. */
  private pause(): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.pause();
  }

  resume(): void {
    this.ws?.resume();
  }

  /** Drops the socket without a closing handshake (the drain's deadline has passed). */
  terminate(): void {
    this.ws?.terminate();
  }

  /**
   * One heartbeat: a socket that has not answered the last ping since the previous beat is dropped
   * (false) unless the beat came late (`onTime` false: the server's loop stalled, so the answer may not
   * have been read), when it is pinged again; any other is pinged (true).
   */
  beat(onTime = true): boolean {
    const ws = this.ws!;
    if (!this.alive && onTime) {
      ws.terminate();
      return false;
    }
    this.alive = false;
    ws.ping();
    return true;
  }

  /** A frame from the client, after the rate limit. */
  receive(data: Buffer, isBinary: boolean): void {
    // A data message completed: everything read is accounted for, and the in-progress flag clears.
    this.readMark = this.rawSocket.bytesRead;
    this.host.stats.framesReceived++;
    if (this.deflateBits !== 0 && this.host.deflate!.clientNoContextTakeover) this.releaseInflate();
    // Once this side has sent its close frame (RFC 6455 §1.4), data frames are read only to reach the
    // client's close reply, and discarded.
    if (this.flooded || this.ws!.readyState !== WebSocket.OPEN) return;
    if (!this.allow(data.length)) return this.flood();
    // The connection is behind: stop reading until it calls resume().
    if (this.connection.frame(isBinary ? data : data.toString()) === false) this.pause();
  }

  /**
   * A ping or pong from the client. ws answers pings itself, and neither reaches the consumer, but each
   * costs a turn of parsing (and a pong written for a ping): they count against the rate limit too.
   */
  control(data: Buffer): void {
    // 2 header bytes, 4 mask bytes and its payload (at most 125) are accounted for.
    const size = 6 + data.length;
    this.readMark += this.readMark < 0 ? -size : size;
    if (!this.flooded && !this.allow(data.length)) this.flood();
  }

  private allow(size: number): boolean {
    const limit = this.host.rateLimit;
    return limit === null || (this.limiter ??= new ConnectionRateLimiter(limit)).allow(size);
  }

  /** Past the rate limit: close 1008, and drop the socket if the close does not complete soon. */
  private flood(): void {
    const ws = this.ws!;
    this.flooded = true;
    this.host.flooded(this);
    ws.close(CloseCode.policy, 'rate limit exceeded');
    setTimeout(terminateSocket, CLOSE_GRACE_MS, ws).unref();
  }

  socketClosed(code: number): void {
    this.discard();
    // As finally() would, with fewer allocations: ended either way, a rejection still reported.
    const ended = (): void => this.host.ended(this, code);
    void this.connection.closed(code).then(ended, (error: unknown) => {
      ended();
      throw error;
    });
  }

  socketError(error: Error): void {
    this.host.socketError(this, error);
  }

  protected override get open(): boolean {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  protected override get maxBacklog(): number {
    return this.host.maxBufferedBytes;
  }

  /** A slow reader: its frames past `maxBufferedBytes` are dropped and counted, or it is closed (the policy). */
  protected override overBacklog(count: number, bytes: number): boolean {
    if (this.host.slowReaderPolicy === 'close') {
      if (this.ws?.readyState === WebSocket.OPEN) this.closeSlowReader(this.ws);
      return false;
    }
    this.host.dropped(this, 'slowReader', bytes, count);
    return true;
  }

  protected override written(count: number): void {
    this.host.stats.framesSent += count;
  }

  /** Sends 1013; a reader that is not reading will not take the close frame either, so drop it soon after. */
  private closeSlowReader(ws: WebSocket): void {
    this.host.stats.slowReaderCloses++;
    this.discard();
    ws.close(CloseCode.tryAgainLater, 'reader too slow');
    setTimeout(terminateSocket, CLOSE_GRACE_MS, ws).unref();
  }

  // ---- The time limit on an unfinished message (`messageTimeout`): the server calls checkMessage() on
  // every live transport once per period. One number per connection; no allocation per frame.

  /**
   * Bytes of the socket's stream taken by complete frames, as far as is known: a data message sets it
   * to everything read so far (that read may hold the start of the next frame, so it errs high and
   * never makes a complete stream look unfinished); a client control frame adds its exact size.
   * Negative while the server has found a message in progress and none has completed since.
   */
  private readMark = 0;

  /**
   * One check: a message in progress at the last check (bytes read past the last complete frame) with
   * none completed since has taken over the period: close it with 1008, a policy of this server (1009
   * would say the message is too big, which it need not be). The socket's byte count against the frames
   * ws reported, no look into ws's parser.
   */
  checkMessage(onTime = true): void {
    const ws = this.ws!;
    if (ws.readyState !== WebSocket.OPEN) return;
    const mark = this.readMark;
    if (ws.isPaused) {
      // The server stopped reading (its consumer is behind): a message it has not read is not late.
      if (mark < 0) this.readMark = -mark;
      return;
    }
    const read = this.rawSocket.bytesRead;
    if (mark >= 0) {
      // In progress now: flag it; a message completing before the next check clears the flag.
      if (read > mark) this.readMark = -mark;
      return;
    }
    if (read <= -mark) {
      // What was in progress was a control frame, complete since.
      this.readMark = -mark;
      return;
    }
    // Still in progress, but the check came late: the rest may be in what the stalled loop has not read.
    if (!onTime) return;
    this.host.messageLate(this, read + mark);
    ws.close(CloseCode.policy, 'message not completed in time');
    // A client that stalls mid-message will not send its close frame either.
    setTimeout(terminateSocket, CLOSE_GRACE_MS, ws).unref();
  }

  /**
   * With client_no_context_takeover no message depends on the previous one: ws's inflate stream for this
   * socket (zlib state, kept by ws until the socket ends: bench/README.md has its size) is closed after each message, and ws
   * makes a new one for the next compressed message. `cleanup()` is the extension's own release, which ws
   * calls at close; ws has no public accessor for the extension object, so `_extensions` is read here.
   */
  private releaseInflate(): void {
    (this.ws as unknown as { _extensions: Record<string, { cleanup(): void } | undefined> })._extensions['permessage-deflate']?.cleanup();
  }

  /**
   * The TCP socket under ws's: its byte count (for checkMessage) and its writes (the outbox). ws has
   * no public accessor for it; with `releaseInflate` and `TransportSocket.close` (the early close), one of
   * the three places that read ws's private fields.
   */
  private get rawSocket(): Socket {
    return (this.ws as unknown as { _socket: Socket })._socket;
  }
}

/**
 * The `ws` socket of a transport (the server's `WebSocket` class). Its events go straight to the
 * transport rather than through listeners: an emitter's listener table would be one more object per
 * connection (bench/README.md, "Where the bytes go"), and a listener would need the transport stored
 * on the socket anyway.
 */
export class TransportSocket extends WebSocket {
  /** Set as soon as the upgrade completes, before the socket can emit anything but 'open'. */
  transport: SocketTransport | null = null;

  /**
   * Every close goes through here: the consumer's, the server's, and ws's own when the client's close
   * frame or a protocol error arrives, possibly in the same read as a message whose reply is still in
   * the outbox. Queued frames are written first, so they reach the client before the close frame.
   */
  override close(code?: number, data?: string | Buffer): void {
    this.transport?.flush();
    // Once the client's close frame is in (ws calls this on it), ws ends the TCP socket after its own
    // close frame, then waits for the client's FIN before it lets go, and Node builds three
    // ERR_STREAM_ALREADY_FINISHED errors (stack traces nobody reads) as ws ends streams already ended.
    // A client sends nothing after its close frame, so once everything this side wrote has gone out the
    // socket is closed; the FIN goes out as before, and the kernel, not this process, takes the client's.
    // Not after a protocol error: the client's unread bytes would turn the close into a reset, and the
    // reset could destroy the close frame before the client reads it; ws drains them until the FIN.
    const internals = this as unknown as { _socket: Socket; _closeFrameReceived: boolean };
    if (internals._closeFrameReceived && internals._socket.listenerCount('finish') === 0) internals._socket.once('finish', destroyFinished);
    super.close(code, data);
    // A socket paused because its consumer is behind would never read the client's close reply, and
    // would linger until ws's close timeout (30 s): a closing socket reads again.
    if (this.isPaused) this.resume();
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const transport = this.transport;
    if (transport === null) return super.emit(event, ...args);
    switch (event) {
      case 'message':
        transport.receive(args[0] as Buffer, args[1] as boolean);
        return true;
      case 'pong':
        transport.alive = true;
        transport.control(args[0] as Buffer);
        return true;
      case 'ping':
        // ws has answered it already (autoPong); nothing listens for 'ping'.
        transport.control(args[0] as Buffer);
        return true;
      case 'error':
        transport.socketError(args[0] as Error);
        return true;
      case 'close':
        transport.socketClosed(args[0] as number);
        return true;
      default:
        return super.emit(event, ...args);
    }
  }
}
