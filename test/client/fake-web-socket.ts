// An in-memory WebSocket for the client's unit tests: the test opens, feeds and closes each socket by hand.
import type { SocketCloseEvent, SocketMessageEvent, WebSocketConstructor, WebSocketLike } from '../../src/client';

export class FakeSocket implements WebSocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: SocketMessageEvent) => void) | null = null;
  onclose: ((event: SocketCloseEvent) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: string[] = [];
  /** What the client passed to close(), if it did. */
  closeCalledWith: { code?: number; reason?: string } | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
    /** Answer close() with the close event on the next microtask, as a live server does; false: the test answers. */
    private readonly answerClose = true,
  ) {}

  send(data: string): void {
    this.sent.push(data);
  }

  /** Like a real socket, asking to close does not close at once: the close event comes later. */
  close(code?: number, reason?: string): void {
    this.closeCalledWith = { code, reason };
    if (this.readyState === 3) return;
    this.readyState = 2;
    if (this.answerClose) void Promise.resolve().then(() => this.closed(code ?? 1005, reason ?? ''));
  }

  /** The handshake completed. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(data: unknown): void {
    this.onmessage?.({ data });
  }

  /** The close event (a server's close, a drop: 1006, or the answer to the client's close()). */
  closed(code = 1006, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code, reason });
  }
}

/** A WebSocket class whose every instance the test sees, in order. */
export function fakeWebSockets(answerClose = true): { WebSocket: WebSocketConstructor; sockets: FakeSocket[]; last(): FakeSocket } {
  const sockets: FakeSocket[] = [];
  class WebSocket extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, answerClose);
      sockets.push(this);
    }
  }
  return {
    WebSocket,
    sockets,
    last() {
      const socket = sockets[sockets.length - 1];
      if (socket === undefined) throw new Error('no socket was made');
      return socket;
    },
  };
}
