// A WebSocket client over raw TCP, for tests that need exact control of what reaches the server in one
// write (a message and a close frame together, a burst of frames, a flood of control frames).
import { connect as tcpConnect, type Socket } from 'node:net';

export const Opcode = { text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** One client-to-server frame (masked, as RFC 6455 requires of clients). */
export function clientFrame(opcode: number, payload: string | Buffer = Buffer.alloc(0), fin = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const length = data.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.alloc(header + 4 + length);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  if (header === 2) frame[1] = 0x80 | length;
  else if (header === 4) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = [0x12, 0x34, 0x56, 0x78];
  frame.set(mask, header);
  for (let i = 0; i < length; i++) frame[header + 4 + i] = data[i] ^ mask[i & 3];
  return frame;
}

/** A close frame with `code` (and no reason). */
export function closeFrame(code: number): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return clientFrame(Opcode.close, payload);
}

export interface ServerFrame {
  opcode: number;
  /** RSV1: a compressed message (permessage-deflate). */
  rsv1: boolean;
  payload: Buffer;
  /** For a close frame: its code (1005 when it has none). */
  code?: number;
}

/**
 * Connected, upgraded and parsing what the server sends. `answerClose` (default true) replies to a
 * server's close frame as a well-behaved client does; set it false for a client that never answers.
 */
export class RawClient {
  readonly frames: ServerFrame[] = [];
  /** Resolves when the server ends or drops the TCP connection. */
  readonly ended: Promise<void>;
  /** The 101 response's header lines. */
  responseHead = '';
  private buffer: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private sentClose = false;

  private constructor(
    readonly socket: Socket,
    private readonly answerClose: boolean,
  ) {
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
  }

  /**
   * `extensions`: a Sec-WebSocket-Extensions header to offer. `halfOpen`: the client never sends its
   * FIN (Node's sockets otherwise answer the server's FIN with theirs).
   */
  static open(port: number, path: string, options: { answerClose?: boolean; extensions?: string; halfOpen?: boolean } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ port, host: '127.0.0.1', allowHalfOpen: options.halfOpen ?? false }, () => {
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
            (options.extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${options.extensions}\r\n`) +
            '\r\n',
        );
      });
      const client = new RawClient(socket, options.answerClose ?? true);
      let head = Buffer.alloc(0);
      const onHead = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onHead);
        client.responseHead = head.subarray(0, end).toString('latin1');
        if (!client.responseHead.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          return reject(new Error(client.responseHead.split('\r\n')[0]));
        }
        socket.on('data', (data: Buffer) => client.receive(data));
        client.receive(head.subarray(end + 4));
        resolve(client);
      };
      socket.on('data', onHead);
      socket.once('error', reject);
    });
  }

  /** Writes `frames` in one TCP write. */
  write(...frames: Buffer[]): void {
    // A client that has sent its own close does not answer the server's.
    if (frames.some((frame) => (frame[0] & 0x0f) === Opcode.close)) this.sentClose = true;
    this.socket.write(Buffer.concat(frames));
  }

  /** Waits until `count` frames have arrived (or the connection ended); returns them all. */
  async waitFrames(count: number, timeoutMs = 5000): Promise<ServerFrame[]> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void this.ended.then(() => (ended = true));
    while (this.frames.length < count && !ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.frames.length} of ${count} frames within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.frames;
  }

  /** The close frame the server sent, waiting for it. */
  async closeCode(timeoutMs = 5000): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const close = this.frames.find((frame) => frame.opcode === Opcode.close);
      if (close) return close.code;
      if (Date.now() > deadline) return undefined;
      await this.waitFrames(this.frames.length + 1, Math.max(1, deadline - Date.now())).catch(() => undefined);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(data: Buffer): void {
    this.buffer = this.buffer.length === 0 ? data : Buffer.concat([this.buffer, data]);
    for (;;) {
      if (this.buffer.length < 2) break;
      const first = this.buffer[0];
      const opcode = first & 0x0f;
      let length = this.buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) break;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) break;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) break;
      const payload = Buffer.from(this.buffer.subarray(offset, offset + length));
      this.buffer = this.buffer.subarray(offset + length);
      const frame: ServerFrame = { opcode, rsv1: (first & 0x40) !== 0, payload };
      if (opcode === Opcode.close) {
        frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        if (this.answerClose && !this.sentClose && !this.socket.destroyed) {
          this.sentClose = true;
          this.socket.write(closeFrame(frame.code === 1005 ? 1000 : frame.code));
        }
      }
      this.frames.push(frame);
    }
    this.wake?.();
  }
}
