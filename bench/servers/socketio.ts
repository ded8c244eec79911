// Socket.IO 4 as its users write it: rooms and io.to(room).emit (default in-memory adapter: one process).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as IOServer, type Socket } from 'socket.io';
import { type System, serve } from './common';

const http = createServer();
const io = new IOServer(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
const sockets = new Set<Socket>();
io.on('connection', (socket) => {
  const room = String(socket.handshake.query.room ?? 'bench');
  void socket.join(room);
  sockets.add(socket);
  socket.on('disconnect', () => sockets.delete(socket));
});

type EngineConn = { writeBuffer: unknown[]; transport: { socket?: { bufferedAmount: number } } };

const system: System = {
  listen: () => new Promise((resolve) => http.listen(0, '127.0.0.1', () => resolve((http.address() as AddressInfo).port))),
  members: () => sockets.size,
  publish(group, payloads) {
    for (const payload of payloads) io.to(group).emit('m', payload);
  },
  maxBacklog() {
    let max = 0;
    for (const socket of sockets) {
      const conn = socket.conn as unknown as EngineConn;
      // Packets waiting in engine.io's buffer (about one frame each) plus bytes queued in ws.
      const b = conn.writeBuffer.length * 64 + (conn.transport.socket?.bufferedAmount ?? 0);
      if (b > max) max = b;
    }
    return max;
  },
};

void serve(system);
