// The ceiling probe: each frame is built once, and all frames of a publishing turn go to a socket in one write,
// made once the turn is over.
// With REDIS_URL (S3): one raw node-redis subscriber, SUBSCRIBE `bench:<group>` per group with members here (as
// naive.ts), each message taken as bytes, framed once, and the frames of one event-loop turn written to each
// socket together (what channelkit's outbox does per turn, with nothing else on the way).
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createClient } from 'redis';
import { WebSocket, WebSocketServer } from 'ws';
import { type System, groupOf, serve } from './common';

/** ws's frame builder (public at runtime, missing from @types/ws). */
const frame = (WebSocket as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender.frame;
const frameOptions = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false } as const;

const groups = new Map<string, Set<Socket>>();
const sockets = new Set<Socket>();
const redisUrl = process.env.REDIS_URL;
const subscriber = redisUrl ? createClient({ url: redisUrl }) : null;
subscriber?.on('error', (e: Error) => console.error('ceiling redis sub', e.message));

/** Frames of this turn per group, from Redis: written by one setImmediate. */
const pending = new Map<string, Buffer[]>();
let flushing = false;

function flush(): void {
  flushing = false;
  for (const [group, parts] of pending) write(group, parts);
  pending.clear();
}

/** Frames `message` once into its group's frames of this turn (from Redis, or from the in-process publisher). */
function queue(group: string, message: Buffer): void {
  let parts = pending.get(group);
  if (!parts) pending.set(group, (parts = []));
  for (const part of frame(message, frameOptions)) parts.push(part);
  if (!flushing) {
    flushing = true;
    setImmediate(flush);
  }
}

function write(group: string, parts: Buffer[]): void {
  const members = groups.get(group);
  if (!members) return;
  const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  for (const socket of members) socket.write(bytes);
}

const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws, req) => {
  const group = groupOf(req.url ?? '/');
  const socket = (ws as unknown as { _socket: Socket })._socket;
  let members = groups.get(group);
  if (!members) {
    groups.set(group, (members = new Set()));
    void subscriber?.subscribe(`bench:${group}`, (message: Buffer) => queue(group, message), true);
  }
  members.add(socket);
  sockets.add(socket);
  ws.on('error', () => undefined);
  ws.on('close', () => {
    sockets.delete(socket);
    members!.delete(socket);
    if (members!.size === 0) {
      groups.delete(group);
      void subscriber?.unsubscribe(`bench:${group}`);
    }
  });
});

const system: System = {
  listen: async () => {
    if (subscriber) await subscriber.connect();
    return new Promise((resolve) => http.listen(0, '127.0.0.1', () => resolve((http.address() as AddressInfo).port)));
  },
  members: () => sockets.size,
  // Written after the publishing turn, as channelkit's outbox does: the publisher times its turns to size its
  // batches, and a turn that included the writes would shrink the probe's batches (more writes per message)
  // on a machine where they are slow.
  publish(group, payloads) {
    for (const payload of payloads) queue(group, Buffer.from(payload));
  },
  maxBacklog() {
    let max = 0;
    for (const socket of sockets) if (socket.writableLength > max) max = socket.writableLength;
    return max;
  },
};

void serve(system);
