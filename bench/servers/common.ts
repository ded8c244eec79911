// What every bench server shares: the IPC loop with the runner and the flow-controlled publisher.
import { type ServerCommand, type ServerReply, makeChatPayload, makePayload, nowUs } from '../protocol';

export interface System {
  /** Listens on a free loopback port; returns it. */
  listen(): Promise<number>;
  /** Connections that have joined their group (to know every client is in). */
  members(): number;
  /** Group-sends each payload to `group` the way a user of the system would. */
  publish(group: string, payloads: string[]): void;
  /** The largest number of bytes any socket has queued unsent (user space): the back-pressure signal. */
  maxBacklog(): number;
}

function reply(message: ServerReply): void {
  process.send!(message);
}

/**
 * Publishes a batch of messages per event-loop turn (setImmediate) for `durationMs`: "as fast as the
 * system accepts". A turn is skipped while some socket has more than `maxBacklogBytes` queued (flow
 * control); the batch adapts so that a publishing turn takes about `turnMs` (doubles while a turn is
 * shorter than half of that, halves when longer), starting at `batch`. So a system that frames once
 * and writes once per socket gets the large batches it can absorb, and one that works per member per
 * message gets small ones, with the event loop turning every ~`turnMs` in both.
 *
 * End-to-end credit (`window`): at most `window` messages per client may be published and not yet
 * reported received by the load generators (they report over IPC every few ms, relayed by the
 * runner). So no system builds a queue anywhere (user space, kernel socket buffers, the loopback)
 * longer than the window, and p50/p99 measure transit rather than time spent queued.
 */

/** Deliveries reported by the load generators for the running publish (relayed by the runner). */
let credited = 0;
/** A publisher held back by credit waits for the next credit message rather than spinning (the CPU belongs to the clients then). */
let onCredit: (() => void) | null = null;

function runPublisher(system: System, command: Extract<ServerCommand, { cmd: 'publish' }>): void {
  const padding = 'x'.repeat(Math.max(0, command.payloadBytes - 27));
  let batch = Math.max(1, command.batch);
  let payloads: string[] = [];
  const seqStart = command.seqStart;
  let seq = seqStart;
  credited = 0;
  const windowDeliveries = command.window * command.clients;
  let turns = 0;
  let publishingTurns = 0;
  let pausedTurns = 0;
  const startUs = nowUs();
  const endAt = startUs + command.durationMs * 1000;
  const turnUs = command.turnMs * 1000;
  const turn = (): void => {
    const now = nowUs();
    if (now >= endAt) {
      reply({ type: 'published', messages: seq - seqStart, startUs, endUs: now, pausedTurns, turns, meanBatch: publishingTurns ? (seq - seqStart) / publishingTurns : 0 });
      return;
    }
    turns++;
    // End-to-end credit: messages published and not yet reported received by the load generators.
    let room = batch;
    if (windowDeliveries > 0) {
      const inFlight = (seq - seqStart) * command.clients - credited;
      room = Math.min(batch, Math.floor((windowDeliveries - inFlight) / command.clients));
    }
    if (room <= 0) {
      pausedTurns++;
      // Resume on the next credit message, or after 10 ms if none comes (a lost delivery never reports).
      const timer = setTimeout(() => {
        if (onCredit === resume) {
          onCredit = null;
          turn();
        }
      }, 10);
      const resume = (): void => {
        clearTimeout(timer);
        turn();
      };
      onCredit = resume;
      return;
    }
    if (system.maxBacklog() > command.maxBacklogBytes) {
      pausedTurns++;
    } else {
      const n = room;
      if (payloads.length !== n) payloads = new Array(n);
      if (command.chat) for (let i = 0; i < n; i++) payloads[i] = makeChatPayload(seq++, command.payloadBytes);
      else for (let i = 0; i < n; i++) payloads[i] = makePayload(seq++, padding);
      system.publish(command.group, payloads);
      publishingTurns++;
      const took = nowUs() - now;
      if (took > turnUs && batch > 1) batch = batch >> 1;
      else if (n === batch && took * 2 < turnUs && batch < 4096) batch *= 2; // not when credit held it back
    }
    setImmediate(turn);
  };
  setImmediate(turn);
}

export async function serve(system: System): Promise<void> {
  const port = await system.listen();
  process.on('message', (command: ServerCommand) => {
    switch (command.cmd) {
      case 'count':
        reply({ type: 'count', members: system.members() });
        break;
      case 'rss': {
        const gc = (globalThis as { gc?: () => void }).gc;
        if (gc) {
          gc();
          gc();
        }
        const usage = process.memoryUsage();
        reply({ type: 'rss', rss: usage.rss, heapUsed: usage.heapUsed });
        break;
      }
      case 'cpu':
        reply({ type: 'cpu', ...process.cpuUsage() });
        break;
      case 'publish':
        runPublisher(system, command);
        break;
      case 'credit': {
        credited = command.received;
        const resume = onCredit;
        onCredit = null;
        resume?.();
        break;
      }
      case 'broadcast': {
        const sendUs = nowUs();
        system.publish(command.group, [makePayload(command.seq, 'x'.repeat(Math.max(0, command.payloadBytes - 27)))]);
        reply({ type: 'broadcasted', sendUs });
        break;
      }
      case 'exit':
        // A normal exit, so --cpu-prof writes its profile.
        process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
  reply({ type: 'ready', port });
}

/** The group a connection joins: the last path segment of `/…/<group>/` or `?room=`. */
export function groupOf(url: string): string {
  const q = url.indexOf('?room=');
  if (q >= 0) return url.slice(q + 6).split('&')[0];
  const parts = url.split('?')[0].split('/').filter(Boolean);
  return parts[parts.length - 1] ?? 'bench';
}
