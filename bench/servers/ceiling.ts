// The ceiling probe: each frame is built once, and all frames of a publishing turn go to a socket in one write.
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/** ws's frame builder (public at runtime, missing from @types/ws). */
const frame = (WebSocket as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender.frame;
import { type System, groupOf, serve } from './common';

const groups = new Map<string, Set<Socket>>();
const sockets = new Set<Socket>();
const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws, req) => {
  const group = groupOf(req.url ?? '/');
  const socket = (ws as unknown as { _socket: Socket })._socket;
  let members = groups.get(group);
  if (!members) groups.set(group, (members = new Set()));
  members.add(socket);
  sockets.add(socket);
  ws.on('error', () => undefined);
  ws.on('close', () => {
    sockets.delete(socket);
    members!.delete(socket);
    if (members!.size === 0) groups.delete(group);
  });
});

const frameOptions = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false } as const;

const system: System = {
  listen: () => new Promise((resolve) => http.listen(0, '127.0.0.1', () => resolve((http.address() as AddressInfo).port))),
  members: () => sockets.size,
  publish(group, payloads) {
    const members = groups.get(group);
    if (!members) return;
    const parts: Buffer[] = [];
    for (const payload of payloads) {
      for (const part of frame(Buffer.from(payload), frameOptions)) parts.push(part);
    }
    const bytes = Buffer.concat(parts);
    for (const socket of members) socket.write(bytes);
  },
  maxBacklog() {
    let max = 0;
    for (const socket of sockets) if (socket.writableLength > max) max = socket.writableLength;
    return max;
  },
};

void serve(system);
