// Shared by the servers, the load generator and the runner: the payload layout, the clock, the histogram.
import { performance } from 'node:perf_hooks';

/**
 * Every bench message payload is ASCII and starts with a fixed-width header:
 *   '#' + sequence (10 digits) + send time in µs since the epoch (16 digits) + padding.
 * Systems may wrap it (JSON, Socket.IO packet); the load generator finds the '#' near the start of
 * the frame and reads the digits in place, with no string or JSON decoding.
 */
export const MARK = 0x23; // '#'
export const SEQ_DIGITS = 10;
export const TS_DIGITS = 16;
export const HEADER_LEN = 1 + SEQ_DIGITS + TS_DIGITS;
/** How far into a frame's payload the '#' may be (the Socket.IO wrapper `42["m","` is 9 bytes). */
export const MARK_SEARCH = 48;

/** Wall-clock µs from the monotonic clock: comparable across processes on one machine. */
export function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

const ZEROS = '0000000000000000';

export function makePayload(seq: number, padding: string): string {
  const s = String(seq);
  const t = String(nowUs());
  return '#' + ZEROS.slice(0, SEQ_DIGITS - s.length) + s + ZEROS.slice(0, TS_DIGITS - t.length) + t + padding;
}

/** Words for chat messages: a vocabulary, not a few fixed sentences, so that a compressor keeping its context across messages finds what real chat gives it (keys, names, common words) and no more. */
const WORDS = (
  'the a to and of in is it you that for on we this be with are have not at can will just do if so but ' +
  'deploy review branch test release build merge fix bug issue ticket meeting standup lunch today tomorrow ' +
  'morning afternoon customer server metrics error rate latency login page layout design team please thanks ' +
  'sure great sounds good ok done looking now later again still new old first last next week friday monday ' +
  'pushed checked updated moved closed opened broke works failed passed flaky green red slow fast back up down'
).split(' ');
const NAMES = ['alice', 'bob', 'chandra', 'dmitri', 'eun-ji', 'fatima', 'gustavo', 'hiroshi'];

/** A chat line of 10-17 words, the same for the same `n` (a small LCG, no shared state). */
function chatLine(n: number): string {
  let x = (n * 2654435761) >>> 0;
  const next = (): number => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  const words: string[] = [];
  for (let i = 10 + (next() % 8); i > 0; i--) words.push(WORDS[next() % WORDS.length]);
  return words.join(' ') + (next() % 3 === 0 ? '?' : '.');
}

/**
 * A chat frame as an app would send it (scenario C, where compression ratios must be realistic, unlike
 * `makePayload`'s padding): a JSON object whose first field holds the bench header, then a message, name,
 * time, offset and epoch like the chat demo's. At `bytes` over ~300 it carries a history batch: an array of
 * such messages until the size is reached (a reload's `last=N`).
 */
export function makeChatPayload(seq: number, bytes: number): string {
  const head = makePayload(seq, '');
  const time = Math.round(performance.timeOrigin + performance.now());
  const one = (i: number): string =>
    `{"message":${JSON.stringify(chatLine(i))},"name":"${NAMES[(i * 7) % NAMES.length]}","time":${time - (i % 97) * 1013},"offset":${i},"epoch":"q8Xk2wPz"}`;
  if (bytes < 300) return `{"id":"${head}",${one(seq).slice(1)}`;
  const items: string[] = [];
  let size = head.length + 22;
  for (let i = 0; size < bytes; i++) {
    const item = one(seq * 40 + i);
    items.push(item);
    size += item.length + 1;
  }
  return `{"id":"${head}","messages":[${items.join(',')}]}`;
}

/** Latency histogram in µs: 10 µs buckets below 10 ms, 1 ms buckets below 60 s, then one overflow bucket. */
export const HIST_SIZE = 1000 + 60_000 + 1;

export function histIndex(us: number): number {
  if (us < 0) return 0;
  if (us < 10_000) return (us / 10) | 0;
  if (us < 60_000_000) return 990 + ((us / 1000) | 0);
  return HIST_SIZE - 1;
}

/** Upper bound of bucket i, in µs. */
export function histUpper(i: number): number {
  if (i < 1000) return (i + 1) * 10;
  return (i - 990 + 1) * 1000;
}

export function percentile(hist: ArrayLike<number>, p: number): number {
  let total = 0;
  for (let i = 0; i < hist.length; i++) total += hist[i];
  if (total === 0) return NaN;
  const rank = Math.ceil(total * p);
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i];
    if (seen >= rank) return histUpper(i);
  }
  return histUpper(hist.length - 1);
}

/** Sparse form for IPC: [index, count, index, count, ...]. */
export function packHist(hist: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < hist.length; i++) if (hist[i] !== 0) out.push(i, hist[i]);
  return out;
}

export function addPacked(into: Float64Array, packed: number[]): void {
  for (let i = 0; i < packed.length; i += 2) into[packed[i]] += packed[i + 1];
}

// ---- IPC between the runner and the server children ----

export type ServerCommand =
  | { cmd: 'count' }
  | { cmd: 'rss' }
  | {
      cmd: 'publish';
      group: string;
      durationMs: number;
      batch: number;
      turnMs: number;
      payloadBytes: number;
      maxBacklogBytes: number;
      /** First sequence number (a measured run continues the warm-up's numbers). */
      seqStart: number;
      /** End-to-end credit: at most this many messages per client published and not yet received (0: off). */
      window: number;
      /** Clients in the group: deliveries expected per message. */
      clients: number;
      /** Scenario C: chat JSON payloads of about `payloadBytes` (`makeChatPayload`) instead of padded ones. */
      chat?: boolean;
    }
  /** Deliveries the load generators have reported for the running publish (the credit signal). */
  | { cmd: 'credit'; received: number }
  /** One message to the group, now (S5). */
  | { cmd: 'broadcast'; group: string; seq: number; payloadBytes: number }
  /** The server process's (a cluster's: every process's) CPU time so far, process.cpuUsage() in µs. */
  | { cmd: 'cpu' }
  | { cmd: 'exit' };

export type ServerReply =
  | { type: 'ready'; port: number }
  | { type: 'count'; members: number }
  | { type: 'rss'; rss: number; heapUsed: number }
  | { type: 'published'; messages: number; startUs: number; endUs: number; pausedTurns: number; turns: number; meanBatch: number }
  | { type: 'broadcasted'; sendUs: number }
  | { type: 'cpu'; user: number; system: number };

export type LoadgenCommand =
  | {
      cmd: 'connect';
      port: number;
      paths: string[];
      count: number;
      mode: 'ws' | 'sio';
      localAddresses: string[];
      concurrency: number;
      /** Offer permessage-deflate as Chrome does (`permessage-deflate; client_max_window_bits`) and inflate RSV1 messages. */
      deflate?: boolean;
    }
  | { cmd: 'stats' }
  /** S7: every client so far joins and leaves rooms `<prefix><0..rooms-1>` over its open connection (see room-churn.ts). */
  | { cmd: 'rooms'; mode: 'ws' | 'sio'; prefix: string; rooms: number; dwellMs: number; durationMs: number }
  /** Zeroes the counters; messages with a sequence number below `minSeq` count as stale from now on. */
  | { cmd: 'reset'; minSeq: number; epoch: number }
  /** Report `received` every `intervalMs` while it moves (0: stop). */
  | { cmd: 'progress'; intervalMs: number }
  /** S4: connect, wait for the server's accept (Socket.IO: its CONNECT packet), close; repeat for `durationMs`. */
  | { cmd: 'churn'; port: number; paths: string[]; mode: 'ws' | 'sio'; localAddresses: string[]; concurrency: number; durationMs: number }
  | { cmd: 'exit' };

export type LoadgenReply =
  | { type: 'connected'; ok: number; failed: number; ms: number; error?: string }
  | {
      type: 'stats';
      received: number;
      lastUs: number;
      firstUs: number;
      hist: number[];
      closed: number;
      malformed: number;
      stale: number;
      /** Bytes read from the server after the upgrades (frames on the wire), since the last reset. */
      bytes?: number;
      /** Messages inflated (RSV1), since the last reset. */
      inflated?: number;
    }
  | { type: 'progress'; received: number; epoch: number }
  | { type: 'roomed'; joins: number; leaves: number; received: number; lost: number; duplicates: number; strays: number; late: number; timeouts: number; ms: number }
  | { type: 'churned'; cycles: number; failed: number; ms: number };
