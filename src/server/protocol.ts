// Server-to-client WebSocket frames (RFC 6455 §5.2), built once and reused for identical payloads, plain
// or compressed (permessage-deflate, RFC 7692).
import { Buffer } from 'node:buffer'; // not the global: Node's global Buffer is a getter, called at every use
import * as zlib from 'node:zlib';
import type { DeflateSettings } from './permessage-deflate';

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const FIN = 0x80;
/** RSV1 on a message's first frame: its payload is compressed (RFC 7692 §6). */
const RSV1 = 0x40;
/** Bytes zlib's sync flush ends with; RFC 7692 §7.2.1 has the sender drop them and the receiver add them back. */
const TRAILER_LENGTH = 4;

/** A frame with this first byte around `payload` (which is copied in). */
function frameOf(firstByte: number, payload: string | Buffer): Buffer {
  const text = typeof payload === 'string';
  const length = text ? Buffer.byteLength(payload) : payload.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = firstByte;
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  if (text) frame.write(payload, header, 'utf8');
  else payload.copy(frame, header);
  return frame;
}

/**
 * Encodes one unmasked, unfragmented frame (servers never mask) in a single buffer. A group send
 * makes every member send the same bytes; `FrameCache` turns that into one encoding for all.
 */
export function encodeFrame(data: string | Buffer): Buffer {
  return frameOf(FIN | (typeof data === 'string' ? OPCODE_TEXT : OPCODE_BINARY), data);
}

/** The payload length of a frame built by `encodeFrame`. */
export function payloadLength(frame: Buffer): number {
  const length = frame[1] & 0x7f;
  return frame.length - (length === 127 ? 10 : length === 126 ? 4 : 2);
}

/**
 * The window to compress a payload of `length` bytes with, for a socket that allows `allowed` bits: the
 * smallest that holds the whole payload (zlib's matches reach at most 2^bits − 262 back), so a short payload
 * costs a small compressor and one result serves every socket allowing at least that. zlib has no 8-bit raw
 * window and makes it 9; at 9 it never reaches past 250 bytes, within what an 8-bit inflater holds.
 */
function windowBits(length: number, allowed: number): number {
  let bits = 9;
  while (bits < allowed && (1 << bits) - 262 < length) bits++;
  return bits;
}

/**
 * Remembers the last payload framed, plain and compressed (one compressed frame per window size asked for).
 * Members of one group send the same string one after the other, so one entry catches the whole fan-out;
 * comparing strings is cheap next to encoding, let alone compressing them.
 */
export class FrameCache {
  private lastData: string | Buffer | null = null;
  private lastFrame: Buffer | null = null;
  /** Compressed forms of `lastFrame`, by window bits (index 9-15); emptied when `lastFrame` changes. */
  private readonly deflated: (Buffer | undefined)[] = new Array<Buffer | undefined>(16);
  private deflatedOf: Buffer | null = null;

  /** `deflate`: the server's permessage-deflate settings, null when it is off. */
  constructor(private readonly deflate: DeflateSettings | null = null) {}

  frame(data: string | Buffer): Buffer {
    if (data === this.lastData && this.lastFrame !== null) return this.lastFrame;
    const frame = encodeFrame(data);
    // Binary payloads may be mutated by their owner after send: only strings are safe to reuse.
    if (typeof data === 'string') {
      this.lastData = data;
      this.lastFrame = frame;
    }
    return frame;
  }

  /**
   * The compressed form of `frame` (from `frame()`) for a socket that negotiated permessage-deflate with a
   * window of `allowed` bits; `frame` itself when its payload is under the threshold, or would not shrink.
   * Compressed once per payload and window: every member of a group send gets the same buffer.
   */
  compressed(frame: Buffer, allowed: number): Buffer {
    const settings = this.deflate!;
    const length = payloadLength(frame);
    if (length < settings.threshold) return frame;
    const bits = windowBits(length, allowed);
    const cacheable = frame === this.lastFrame;
    if (cacheable && this.deflatedOf === frame) {
      const hit = this.deflated[bits];
      if (hit !== undefined) return hit;
    }
    const deflated = zlib.deflateRawSync(frame.subarray(frame.length - length), {
      level: settings.level,
      memLevel: settings.memLevel,
      windowBits: bits,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    const size = deflated.length - TRAILER_LENGTH;
    // Incompressible: the plain frame costs the client nothing to read.
    const result = size >= length ? frame : frameOf(FIN | RSV1 | (frame[0] & 0x0f), deflated.subarray(0, size));
    if (cacheable) {
      if (this.deflatedOf !== frame) {
        this.deflated.fill(undefined);
        this.deflatedOf = frame;
      }
      this.deflated[bits] = result;
    }
    return result;
  }
}
