// The naive raw ws server: a Map of groups, JSON.stringify and ws.send per member. The floor of framework overhead.
// With REDIS_URL (S3): one node-redis subscriber, SUBSCRIBE `bench:<group>` per group with members here,
// and each message relayed like a local publish; the outside publisher does a raw PUBLISH.
import { createServer } from 'node:http';
import { createClient } from 'redis';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { type System, groupOf, serve } from './common';

const groups = new Map<string, Set<WebSocket>>();
const sockets = new Set<WebSocket>();
const redisUrl = process.env.REDIS_URL;
const subscriber = redisUrl ? createClient({ url: redisUrl }) : null;
subscriber?.on('error', (e: Error) => console.error('naive redis sub', e.message));

function relay(group: string, payload: string): void {
  const members = groups.get(group);
  if (!members) return;
  const message = { type: 'bench.message', payload };
  for (const ws of members) ws.send(JSON.stringify(message));
}
const http = createServer();
// BENCH_DEFLATE=1 (scenario C): ws's own permessage-deflate with its defaults, as a user turns it on: one
// compression per socket per message, and a zlib stream per socket while it keeps its context.
const wss = new WebSocketServer({ server: http, perMessageDeflate: process.env.BENCH_DEFLATE === '1', clientTracking: false });
wss.on('connection', (ws, req) => {
  const group = groupOf(req.url ?? '/');
  let members = groups.get(group);
  if (!members) {
    groups.set(group, (members = new Set()));
    void subscriber?.subscribe(`bench:${group}`, (payload) => relay(group, payload));
  }
  members.add(ws);
  sockets.add(ws);
  ws.on('error', () => undefined);
  ws.on('close', () => {
    sockets.delete(ws);
    members!.delete(ws);
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
  publish(group, payloads) {
    const members = groups.get(group);
    if (!members) return;
    for (const payload of payloads) relay(group, payload);
  },
  maxBacklog() {
    let max = 0;
    for (const ws of sockets) if (ws.bufferedAmount > max) max = ws.bufferedAmount;
    return max;
  },
};

void serve(system);
