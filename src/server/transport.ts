// One connection's socket as its consumer sees it: completes the handshake, sends coalesced frames, closes.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { type Connection, type ResponseHeaders, type Transport, type Scope, CloseCode } from '../application';
import type { DropReason } from './dropped-frames';
import { type FrameCache, payloadLength } from './protocol';
import { Outbox } from './outbox';
import { ConnectionRateLimiter, type RateLimit } from './rate-limit';

/** What every transport of one server shares; one object, so a connection holds one pointer to it. */
export interface TransportHost {
  readonly frames: FrameCache;
  readonly maxBufferedBytes: number;
  readonly slowReaderPolicy: 'close' | 'drop';
  readonly rateLimit: RateLimit | null;
  /** Largest payload sent to a client, in bytes (the server's `maxOutboundFrame`). */
  readonly maxOutboundFrame: number;
  /** A frame was not sent: over `maxOutboundFrame` (`bytes` at least its payload size), or to a slow reader. */
  dropped(transport: SocketTransport, reason: DropReason, bytes: number): void;
  /** Completes the upgrade (ws's handleUpgrade), with `headers` added to the 101 response, and returns the socket. */
  upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    subprotocol: string | undefined,
    headers: ResponseHeaders | undefined,
  ): TransportSocket | null;
  /** The socket is accepted: start tracking it. */
  opened(transport: SocketTransport): void;
  /** A client went past its rate limit. */
  flooded(transport: SocketTransport): void;
  /** The socket closed and the connection's disconnect handlers ran. */
  ended(transport: SocketTransport, code: number): void;
  socketError(transport: SocketTransport, error: Error): void;
}

/**
 * How long a socket closed for reading too slowly, or for flooding, may take to finish closing before
 * it is dropped: neither can be trusted to read the close frame or answer it.
 */
const CLOSE_GRACE_MS = 1000;

/**
 * Kept small on purpose: one instance per connection, methods on the prototype and no closures, so
 * an idle connection costs little. It is its socket's outbox (a subclass, not a second object per
 * connection). The handshake request is released as soon as it is answered.
 */
export class SocketTransport extends Outbox implements Transport {
  ws: TransportSocket | null = null;
  refused: { code: number; reason: string } | null = null;
  /** Cleared by each heartbeat, set by each pong. */
  alive = true;
  /** Made on the first frame: an idle connection needs none, and a new bucket starts full anyway. */
  limiter: ConnectionRateLimiter | null = null;
  private flooded = false;
  private handshake: { req: IncomingMessage; socket: Duplex; head: Buffer } | null;

  constructor(
    private readonly host: TransportHost,
    readonly connection: Connection,
    readonly started: number,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ) {
    super();
    this.handshake = { req, socket, head };
  }

  /** The connection's scope (kept there, not twice per connection). */
  get scope(): Scope {
    return this.connection.scope;
  }

  accept(subprotocol?: string, headers?: ResponseHeaders): void {
    if (this.ws || this.refused || !this.handshake) return;
    const { req, socket, head } = this.handshake;
    this.handshake = null;
    const ws = this.host.upgrade(req, socket, head, subprotocol, headers);
    if (!ws) return;
    this.ws = ws;
    this.attach((ws as unknown as { _socket: Socket })._socket);
    this.host.opened(this);
  }

  send(data: string | Buffer): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== 1) return;
    if (ws.bufferedAmount + this.pendingBytes > this.host.maxBufferedBytes) {
      if (this.host.slowReaderPolicy === 'close') this.closeSlowReader(ws);
      else this.host.dropped(this, 'slowReader', data.length);
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
    this.push(frame);
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
  pause(): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.pause();
  }

  resume(): void {
    this.ws?.resume();
  }

  /** A frame from the client, after the rate limit. */
  receive(data: Buffer, isBinary: boolean): void {
    // Once this side has sent its close frame (RFC 6455 §1.4), data frames are read only to reach the
    // client's close reply, and discarded.
    if (this.flooded || this.ws!.readyState !== WebSocket.OPEN) return;
    if (!this.allow(data.length)) return this.flood();
    this.connection.frame(isBinary ? data : data.toString());
  }

  /**
   * A ping or pong from the client. ws answers pings itself, and neither reaches the consumer, but each
   * costs a turn of parsing (and a pong written for a ping): they count against the rate limit too.
   */
  control(data: Buffer): void {
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
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  socketClosed(code: number): void {
    this.discard();
    void this.connection.closed(code).finally(() => this.host.ended(this, code));
  }

  socketError(error: Error): void {
    this.host.socketError(this, error);
  }

  /** Sends 1013; a reader that is not reading will not take the close frame either, so drop it soon after. */
  private closeSlowReader(ws: WebSocket): void {
    this.discard();
    ws.close(CloseCode.tryAgainLater, 'reader too slow');
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  // ---- Added by the server side (issue 8, 1b.8): the time limit on an unfinished message, checked by
  // Server.checkMessages(). One number per connection; no allocation per frame.

  /**
   * Bytes of the socket's stream taken by complete frames, as far as is known: a data message sets it
   * to everything read so far (that read may hold the start of the next frame, so it errs high and
   * never makes a complete stream look unfinished); a client control frame adds its exact size.
   * Negative while the server has found a message in progress and none has completed since.
   */
  readMark = 0;

  /** A data message completed: everything read is accounted for, and the in-progress flag clears. */
  messageRead(): void {
    this.readMark = this.bytesRead();
  }

  /** A ping or pong from the client: 2 header bytes, 4 mask bytes and its payload (at most 125). */
  controlRead(payload: Buffer): void {
    const size = 6 + payload.length;
    this.readMark += this.readMark < 0 ? -size : size;
  }

  /** Bytes read from the client's socket so far. */
  bytesRead(): number {
    return (this.ws as unknown as { _socket: Socket })._socket.bytesRead;
  }
}

/**
 * The `ws` socket of a transport (the server's `WebSocket` class). Its events go straight to the
 * transport rather than through listeners: an emitter's listener table costs every connection
 * about a hundred bytes, and a listener would need the transport stored on the socket anyway.
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
        transport.messageRead();
        transport.receive(args[0] as Buffer, args[1] as boolean);
        return true;
      case 'pong':
        transport.alive = true;
        transport.controlRead(args[0] as Buffer);
        transport.control(args[0] as Buffer);
        return true;
      case 'ping':
        // ws has answered it already (autoPong); nothing listens for 'ping'.
        transport.controlRead(args[0] as Buffer);
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
