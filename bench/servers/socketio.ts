// Socket.IO 4 as its users write it: rooms and io.to(room).emit (default in-memory adapter: one process).
// With REDIS_URL (S3): @socket.io/redis-adapter on node-redis, as its README shows; the outside publisher is @socket.io/redis-emitter.
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
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
  // S7: join and leave rooms over the open connection, acknowledged once done (both are local to the process).
  socket.on('j', (name: unknown, ack: unknown) => {
    if (typeof name !== 'string' || typeof ack !== 'function') return refuse(socket, 'j');
    void socket.join(name);
    ack();
  });
  socket.on('l', (name: unknown, ack: unknown) => {
    if (typeof name !== 'string' || typeof ack !== 'function') return refuse(socket, 'l');
    void socket.leave(name);
    ack();
  });
  socket.on('disconnect', () => sockets.delete(socket));
});

function refuse(socket: Socket, event: string): void {
  console.error(`socket.io bench server: '${event}' needs a room name and an acknowledgement callback`);
  socket.disconnect(true);
}

type EngineConn = { writeBuffer: unknown[]; transport: { socket?: { bufferedAmount: number } } };

async function listen(): Promise<number> {
  const redisUrl = process.env.REDIS_URL;
  if (redisUrl) {
    const pubClient = createClient({ url: redisUrl });
    const subClient = pubClient.duplicate();
    pubClient.on('error', (e: Error) => console.error('socket.io redis pub', e.message));
    subClient.on('error', (e: Error) => console.error('socket.io redis sub', e.message));
    await Promise.all([pubClient.connect(), subClient.connect()]);
    io.adapter(createAdapter(pubClient, subClient));
  }
  return new Promise((resolve) => http.listen(0, '127.0.0.1', () => resolve((http.address() as AddressInfo).port)));
}

const system: System = {
  listen,
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
