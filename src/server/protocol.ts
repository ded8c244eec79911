// Server-to-client WebSocket frames (RFC 6455 §5.2), built once and reused for identical payloads.

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const FIN = 0x80;

/**
 * Encodes one unmasked, unfragmented frame (servers never mask) in a single buffer. A group send
 * makes every member send the same bytes; `FrameCache` turns that into one encoding for all.
 */
export function encodeFrame(data: string | Buffer): Buffer {
  const text = typeof data === 'string';
  const length = text ? Buffer.byteLength(data) : data.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = FIN | (text ? OPCODE_TEXT : OPCODE_BINARY);
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
  if (text) frame.write(data, header, 'utf8');
  else data.copy(frame, header);
  return frame;
}

/** The payload length of a frame built by `encodeFrame`. */
export function payloadLength(frame: Buffer): number {
  const length = frame[1] & 0x7f;
  return frame.length - (length === 127 ? 10 : length === 126 ? 4 : 2);
}

/**
 * Remembers the last payload framed. Members of one group send the same string one after the other,
 * so one entry catches the whole fan-out; comparing strings is cheap next to encoding them.
 */
export class FrameCache {
  private lastData: string | Buffer | null = null;
  private lastFrame: Buffer | null = null;

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
}
