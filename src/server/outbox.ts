// Per-socket outgoing frames, coalesced: everything queued for a socket in one event-loop turn is one write.
import { Buffer } from 'node:buffer'; // not the global: Node's global Buffer is a getter, called at every use
import type { Socket } from 'node:net';

/**
 * Loopback and kernel writes cost far more than building frames here (a profile of a 1,000-member
 * fan-out spent three quarters of its time in one writev per member per message). Frames queue per
 * socket and go out together once per turn, as one corked write.
 */
/** Up to this many queued bytes are copied into one buffer per flush. */
const COPY_LIMIT = 64 * 1024;

/**
 * Shared by every outbox with nothing queued; replaced by a real array on the first push of a turn,
 * which also marks the outbox as scheduled (an idle socket holds no array and no flag).
 */
const EMPTY: Buffer[] = Object.freeze([]) as unknown as Buffer[];

/** Outboxes with frames queued this turn, written by one setImmediate for the whole process. */
let dirty: Outbox[] = [];

/**
 * The frames last copied into one buffer, and that buffer. The members of a group send queue the same
 * frames (FrameCache hands them one buffer per payload), so the sockets flushed one after the other
 * write one shared copy, as the fan-out builds one frame: the copy is made once per distinct queue.
 */
let lastFrames: readonly Buffer[] = EMPTY;
let lastCopy: Buffer | null = null;

function flushDirty(): void {
  const outboxes = dirty;
  dirty = [];
  for (const outbox of outboxes) outbox.flush();
  // Not kept past the turn: it would pin up to COPY_LIMIT bytes while nothing is sent.
  lastFrames = EMPTY;
  lastCopy = null;
}

/** `frames` (not changed once flushed) in one buffer, reusing the previous copy when they are the same frames. */
function coalesce(frames: readonly Buffer[], bytes: number): Buffer {
  if (lastCopy === null || !sameFrames(frames, lastFrames)) {
    lastCopy = Buffer.concat(frames, bytes);
    lastFrames = frames;
  }
  return lastCopy;
}

function sameFrames(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Outbox {
  private frames: Buffer[] = EMPTY;
  /** Bytes queued here and not yet handed to the socket. */
  pendingBytes = 0;

  /** `socket` may come later (`attach`): a transport is an outbox before its upgrade completes. */
  constructor(private socket: Socket | null = null) {}

  protected attach(socket: Socket): void {
    this.socket = socket;
  }

  push(frame: Buffer): void {
    if (this.frames === EMPTY) {
      this.frames = [];
      // A flush() before the turn ends can leave this outbox listed twice; the second flush finds nothing.
      if (dirty.push(this) === 1) setImmediate(flushDirty);
    }
    this.frames.push(frame);
    this.pendingBytes += frame.length;
  }

  /** Writes what is queued now. Call before anything else writes to the socket (a close frame). */
  flush(): void {
    let frames = this.frames;
    if (frames.length === 0) return;
    let bytes = this.pendingBytes;
    this.frames = EMPTY;
    this.pendingBytes = 0;
    const socket = this.socket;
    if (socket === null || socket.destroyed || !socket.writable || !this.open) return;
    // The socket's own backlog is read here, once per turn, not at every frame queued: a group send
    // would otherwise reach into three more objects per member per message.
    const backlog = socket.writableLength;
    if (backlog + bytes > this.maxBacklog) {
      const fit = this.framesThatFit(frames, backlog);
      if (fit.count < frames.length) {
        if (!this.overBacklog(frames.length - fit.count, bytes - fit.bytes)) return;
        if (fit.count === 0) return;
        frames = frames.slice(0, fit.count);
        bytes = fit.bytes;
      }
    }
    this.written(frames.length);
    if (frames.length === 1) {
      socket.write(frames[0]);
      return;
    }
    // Small frames are copied into one buffer: one chunk through Node's stream and libuv costs less
    // than many (measured on a 1,000-member fan-out); big ones go as a corked writev without copying.
    if (bytes <= COPY_LIMIT) {
      socket.write(coalesce(frames, bytes));
      return;
    }
    socket.cork();
    for (const frame of frames) socket.write(frame);
    socket.uncork();
  }

  /**
   * How many leading frames a socket holding `backlog` bytes takes, and their bytes: each goes while what
   * is queued before it is within `maxBacklog`, as if every frame had been checked when it was queued.
   */
  private framesThatFit(frames: Buffer[], backlog: number): { count: number; bytes: number } {
    let queued = backlog;
    let count = 0;
    while (count < frames.length && queued <= this.maxBacklog) queued += frames[count++].length;
    return { count, bytes: queued - backlog };
  }

  /** False once the socket must take no more data frames (its close frame is on the way). */
  protected get open(): boolean {
    return true;
  }

  /** Bytes a socket may hold queued, its own buffer included, before frames for it are refused. */
  protected get maxBacklog(): number {
    return Infinity;
  }

  /**
   * `count` frames (`bytes` bytes) did not fit under `maxBacklog`; returns whether the frames that did
   * should still be written (false when the subclass closed the socket instead).
   */
  protected overBacklog(_count: number, _bytes: number): boolean {
    return true;
  }

  /** `count` frames are being handed to the socket (one call per flush, not per frame): for counting. */
  protected written(_count: number): void {}

  /** Forgets queued frames (the socket is gone). */
  discard(): void {
    this.frames = EMPTY;
    this.pendingBytes = 0;
  }
}
