// S3's outside publisher: a process that runs no server and group-sends through Redis the way each
// system's users would: channelkit's createPublisher, Socket.IO's @socket.io/redis-emitter, or a raw
// node-redis PUBLISH for the naive server. Paced at an offered rate (group sends per second).
import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';
import { createPublisher } from '../src/publisher';
import { HEADER_LEN, TS_DIGITS, makePayload, nowUs } from './protocol';
import { ROOM_SPAN } from './room-churn';

export type PublisherCommand =
  | {
      cmd: 'step';
      group: string;
      rate: number;
      durationMs: number;
      seqStart: number;
      payloadBytes: number;
      /** S6, S7: the sends go round-robin over these groups instead of to `group`. */
      groups?: string[];
      /**
       * S7: each group numbers its own messages (see room-churn.ts: sequence = group index × ROOM_SPAN + its
       * counter, then the send time of its previous message); `seqStart` is ignored and the counters go on over steps.
       */
      roomSeq?: boolean;
      /** S6, S7: reply once the last send settled (Redis took it), not when it was handed to the client library. */
      settle?: boolean;
    }
  | { cmd: 'exit' };
export type PublisherReply =
  | { type: 'ready' }
  | { type: 'stepped'; sent: number; startUs: number; endUs: number; errors: number };

const system = process.argv[2];
const url = process.env.REDIS_URL!;

async function sender(): Promise<(group: string, payload: string) => Promise<unknown>> {
  if (system === 'channelkit') {
    const publisher = await createPublisher({ url });
    // S3 + history: the group records every send (the servers read the setting from Redis).
    if (process.env.BENCH_HISTORY === '1') await publisher.setHistory('bench', { size: 100, ttl: 3600 });
    return (group, payload) => publisher.groupSend(group, { type: 'bench.message', payload });
  }
  const client = createClient({ url });
  client.on('error', (e: Error) => console.error('publisher redis', e.message));
  await client.connect();
  // The emitter does not return its PUBLISH's promise: a PING behind it on the same connection tells when Redis has it.
  barrier = () => client.ping();
  if (system === 'socketio') {
    const emitter = new Emitter(client);
    return async (group, payload) => emitter.to(group).emit('m', payload);
  }
  return (group, payload) => client.publish(`bench:${group}`, payload);
}

/** Resolves once Redis has taken every send made so far; null: the last send's own promise says so. */
let barrier: (() => Promise<unknown>) | null = null;

/** S7's per-room counters and each room's last send time, kept across steps. */
let roomCounters: number[] = [];
let previousTs: number[] = [];
/** Round-robin position over `groups`, kept across steps so that every group gets its share. */
let nextGroup = 0;

function reply(message: PublisherReply): void {
  process.send!(message);
}

/**
 * Sends whose failure nobody could catch: Socket.IO's emitter does not return its PUBLISH's promise, so a
 * command that times out on an overloaded machine is an unhandled rejection. Counted with the step's errors
 * (and said once), not a crash of the whole run.
 */
let uncaught = 0;
process.on('unhandledRejection', (reason: unknown) => {
  const what = reason instanceof Error ? `${reason.name}${reason.message ? `: ${reason.message}` : ''}` : String(reason);
  if (uncaught++ === 0) console.error(`publisher: a send failed where it could not be caught (${what}); counted as errors`);
});

async function main(): Promise<void> {
  const send = await sender();
  process.on('message', (command: PublisherCommand) => {
    if (command.cmd === 'exit') process.exit(0);
    if (command.cmd !== 'step') return;
    const padding = 'x'.repeat(Math.max(0, command.payloadBytes - 27));
    const startUs = nowUs();
    const endUs = startUs + command.durationMs * 1000;
    let sent = 0;
    const uncaughtBefore = uncaught;
    let errors = 0;
    const onError = (): void => void errors++;
    const total = Math.round((command.rate * command.durationMs) / 1000);
    const groups = command.groups ?? [command.group];
    if (command.roomSeq) {
      if (roomCounters.length !== groups.length) roomCounters = groups.map(() => 0);
      if (previousTs.length !== groups.length) previousTs = groups.map(() => 0);
    }
    const roomPadding = 'x'.repeat(Math.max(0, command.payloadBytes - HEADER_LEN - TS_DIGITS));
    /** The i-th send of the step: its group, and its payload (stamped now). */
    const one = (i: number): Promise<unknown> => {
      const g = nextGroup++ % groups.length;
      if (!command.roomSeq) return send(groups[g], makePayload(command.seqStart + i, padding));
      const previous = String(previousTs[g]);
      const payload = makePayload(g * ROOM_SPAN + roomCounters[g]++, '0'.repeat(TS_DIGITS - previous.length) + previous + roomPadding);
      previousTs[g] = Number(payload.slice(HEADER_LEN - TS_DIGITS, HEADER_LEN));
      return send(groups[g], payload);
    };
    // A 1 ms timer: each tick sends what the offered rate says is due by now.
    let last: Promise<unknown> = Promise.resolve();
    const tick = (): void => {
      const now = nowUs();
      const due = Math.min(total, Math.floor(((now - startUs) / 1e6) * command.rate));
      while (sent < due) {
        const p = one(sent);
        p.catch(onError);
        last = p;
        sent++;
      }
      if (sent >= total || now >= endUs + 1_000_000) {
        // Replies come in order on one connection: the last send settled means every send did.
        const stepped = (): void => reply({ type: 'stepped', sent, startUs, endUs: nowUs(), errors: errors + uncaught - uncaughtBefore });
        if (command.settle) void (barrier ? barrier() : last).catch(() => undefined).then(stepped);
        else stepped();
      } else setTimeout(tick, 1);
    };
    tick();
  });
  process.on('disconnect', () => process.exit(0));
  reply({ type: 'ready' });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
