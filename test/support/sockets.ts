// Real-socket helpers for integration tests.
import { connect as tcpConnect } from 'node:net';
import WebSocket from 'ws';

/** Opens a client; resolves once open, or rejects with the HTTP status of a refused handshake. */
export function openClient(url: string, options: WebSocket.ClientOptions = {}, protocols?: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/**
 * Opens a client with its Inbox attached before the handshake completes: a frame the server sends right
 * after accept (a presence list, a replay) can arrive in the same read as the 101, before `openClient`'s
 * caller could listen.
 */
export function openInbox(url: string): Promise<Inbox> {
  const ws = new WebSocket(url);
  const inbox = new Inbox(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(inbox));
    ws.once('error', reject);
  });
}

/** The HTTP status a refused handshake got. */
export async function handshakeStatus(url: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  try {
    const ws = await openClient(url, options);
    ws.terminate();
    return 101;
  } catch (error) {
    return (error as { status?: number }).status ?? -1;
  }
}

/** Collects messages as they come so none is missed between awaits. */
export class Inbox {
  private readonly frames: string[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.frames.push(data.toString());
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  async next(timeoutMs = 2000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames.shift()!;
  }

  async nextJson(timeoutMs = 2000): Promise<unknown> {
    return JSON.parse(await this.next(timeoutMs));
  }

  get pending(): number {
    return this.frames.length;
  }
}

/** Sends raw bytes on a fresh TCP connection and returns what the server answered before closing. */
export function rawExchange(port: number, payload: string | Buffer, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let answer = '';
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.write(payload);
  });
}
