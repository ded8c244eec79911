// H1's anchor: Socket.IO 4 with connection state recovery (its in-memory adapter, one process), as its
// docs show it. Told over IPC how many messages to emit to room 'storm'; answers when they are sent.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';

const http = createServer();
const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  connectionStateRecovery: { maxDisconnectionDuration: 120_000 },
});
// A recovered socket gets its rooms back with its missed packets; only a new one joins.
io.on('connection', (socket) => {
  if (!socket.recovered) void socket.join('storm');
});
http.listen(0, '127.0.0.1', () => process.send!({ type: 'ready', port: (http.address() as AddressInfo).port }));
process.on('message', (command: { emit: number; from: number }) => {
  for (let i = 0; i < command.emit; i++) io.to('storm').emit('m', command.from + i);
  process.send!({ type: 'emitted' });
});
process.on('disconnect', () => process.exit(0));
