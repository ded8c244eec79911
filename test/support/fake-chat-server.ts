// A small server that speaks the chat protocol, version 2, as DESIGN.md writes it: for the client's tests
// (test/client/, test/e2e/client.test.ts) while the real server side is built elsewhere.
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server as HttpServer, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

interface Stored {
  message: string;
  time: number;
  offset: number;
  epoch: string;
  name?: string;
}

interface Member {
  id: string;
  name: string;
}

interface FakeRoom {
  epoch: string;
  /** The latest offset (0: empty). */
  offset: number;
  history: Stored[];
  sockets: Set<WebSocket>;
  members: Map<WebSocket, Member>;
}

export interface FakeChatOptions {
  /** Plain HTTP requests (a test page); return false for 404. */
  http?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
  /** Messages a room keeps (older ones are trimmed). Default 100. */
  keep?: number;
}

/**
 * `ws://127.0.0.1:<port>/ws/chat/<room>/`: `name`, `last`, `since` + `epoch` as DESIGN.md's protocol v2
 * says; presence diffs go out at once (no 100 ms batching). `urls` records every handshake's path and
 * query, so a test can check what a client asked.
 */
export class FakeChatServer {
  readonly urls: string[] = [];
  private readonly rooms = new Map<string, FakeRoom>();
  private readonly keep: number;

  private constructor(
    private readonly http: HttpServer,
    private readonly wss: WebSocketServer,
    options: FakeChatOptions,
  ) {
    this.keep = options.keep ?? 100;
    wss.on('connection', (ws, req) => this.connected(ws, req));
  }

  static async start(options: FakeChatOptions = {}, port = 0): Promise<FakeChatServer> {
    const http = createServer((req, res) => {
      void Promise.resolve(options.http?.(req, res) ?? false).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    const wss = new WebSocketServer({ noServer: true });
    http.on('upgrade', (req, socket, head) => {
      if (!/^\/ws\/chat\/[\w-]+\/$/.test(new URL(req.url ?? '/', 'http://x').pathname)) {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    });
    await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
    return new FakeChatServer(http, wss, options);
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Open sockets, all rooms. */
  get connections(): number {
    return this.wss.clients.size;
  }

  room(name: string): FakeRoom {
    let room = this.rooms.get(name);
    if (room === undefined) {
      room = { epoch: randomUUID().slice(0, 8), offset: 0, history: [], sockets: new Set(), members: new Map() };
      this.rooms.set(name, room);
    }
    return room;
  }

  /** Records and sends a message as if a client of `room` had sent it. */
  publish(roomName: string, message: string, name?: string): Stored {
    const room = this.room(roomName);
    const stored: Stored = { message, time: Date.now(), offset: ++room.offset, epoch: room.epoch };
    if (name !== undefined) stored.name = name;
    room.history.push(stored);
    if (room.history.length > this.keep) room.history.shift();
    const frame = JSON.stringify(stored);
    for (const ws of room.sockets) ws.send(frame);
    return stored;
  }

  /** Sends any frame to every socket of `room` (duplicates, malformed frames, a group send without offset). */
  sendRaw(roomName: string, frame: unknown): void {
    const data = typeof frame === 'string' ? frame : JSON.stringify(frame);
    for (const ws of this.room(roomName).sockets) ws.send(data);
  }

  /** The room's history is lost: a new epoch, offsets from 1 again. */
  loseHistory(roomName: string): void {
    const room = this.room(roomName);
    room.epoch = randomUUID().slice(0, 8);
    room.offset = 0;
    room.history = [];
  }

  /** Keeps only the last `count` messages of `room`. */
  trim(roomName: string, count: number): void {
    const room = this.room(roomName);
    room.history = room.history.slice(-count);
  }

  /** Drops every socket without a close frame (the client sees 1006), as a network cut or a crash would. */
  drop(): void {
    for (const ws of this.wss.clients) ws.terminate();
  }

  /** Closes every socket with `code`. */
  closeAll(code: number, reason = ''): void {
    for (const ws of this.wss.clients) ws.close(code, reason);
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private connected(ws: WebSocket, req: IncomingMessage): void {
    this.urls.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    const room = this.room(url.pathname.split('/')[3]);
    const query = url.searchParams;
    const name = query.get('name');
    const since = query.get('since');
    const epoch = query.get('epoch');
    const last = query.get('last');

    if (since !== null && epoch !== null) {
      const offset = Number(since);
      const oldest = room.history.length > 0 ? room.history[0].offset : room.offset + 1;
      if (epoch === room.epoch && offset <= room.offset && offset >= oldest - 1) {
        for (const stored of room.history) if (stored.offset > offset) ws.send(JSON.stringify(stored));
        ws.send(JSON.stringify({ type: 'recovered', recovered: true }));
      } else {
        ws.send(JSON.stringify({ type: 'recovered', recovered: false, epoch: room.epoch, offset: room.offset }));
      }
    } else if (last !== null) {
      for (const stored of room.history.slice(-Math.min(100, Number(last)))) ws.send(JSON.stringify(stored));
    }
    room.sockets.add(ws);

    if (name !== null) {
      const member: Member = { id: randomUUID(), name };
      room.members.set(ws, member);
      ws.send(JSON.stringify({ type: 'presence_state', members: [...room.members.values()] }));
      this.diff(room, ws, [member], []);
    }

    ws.on('message', (data) => {
      let value: { message?: unknown };
      try {
        value = JSON.parse(data.toString()) as { message?: unknown };
      } catch {
        ws.close(1007, 'invalid JSON');
        return;
      }
      if (typeof value?.message !== 'string') ws.send(JSON.stringify({ error: 'expected {"message": "<text>"}' }));
      else this.publish(url.pathname.split('/')[3], value.message, name ?? undefined);
    });
    ws.on('close', () => {
      room.sockets.delete(ws);
      const member = room.members.get(ws);
      if (member === undefined) return;
      room.members.delete(ws);
      this.diff(room, ws, [], [member]);
    });
  }

  private diff(room: FakeRoom, except: WebSocket, joins: Member[], leaves: Member[]): void {
    const frame = JSON.stringify({ type: 'presence_diff', joins, leaves });
    for (const ws of room.members.keys()) if (ws !== except) ws.send(frame);
  }
}
