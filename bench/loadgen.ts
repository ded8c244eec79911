// The load generator: lean raw-TCP WebSocket clients. The upgrade is written by hand, frames are parsed
// by header only, and each message's sequence number and send time are read in place from its payload.
import { type Socket, connect } from 'node:net';
import * as zlib from 'node:zlib';
import {
  HEADER_LEN,
  HIST_SIZE,
  type LoadgenCommand,
  type LoadgenReply,
  MARK,
  MARK_SEARCH,
  SEQ_DIGITS,
  TS_DIGITS,
  histIndex,
  nowUs,
  packHist,
} from './protocol';
import { RoomChurn, type RoomMember } from './room-churn';

const hist = new Float64Array(HIST_SIZE);
let received = 0;
let firstUs = 0;
let lastUs = 0;
let closed = 0;
let malformed = 0;
let stale = 0;
let minSeq = 0;
let epoch = 0;
let progressTimer: NodeJS.Timeout | null = null;
/** Bytes read after the upgrades, and RSV1 messages inflated (scenario C). */
let bytes = 0;
let inflatedCount = 0;
const clients: Client[] = [];

const SIO_CONNECT = maskedText('40');
const SIO_PONG = maskedText('3');

/** A client text frame: the mask bit with an all-zero key, so the payload goes as is. */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

function maskedControl(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

// ---- permessage-deflate (scenario C). The generator offers what Chrome offers and inflates each RSV1 message.
// With `server_no_context_takeover` in the 101 a message inflates on its own, and equal compressed bytes mean
// an equal message: a group send compressed once reaches every client of this generator as the same bytes,
// so the bench header is read once per distinct message (a small cache) rather than inflated per client. A
// server keeping its context (ws's default) gets a per-client inflate stream, asynchronous like ws's own.

const DEFLATE_OFFER = 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n';
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const SYNC = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
/** Compressed bytes (latin1) to their inflated head, for servers without context takeover. */
const inflatedHeads = new Map<string, Buffer>();

/** The first bytes of a message inflated on its own: enough for the bench header. */
function inflatedHead(buf: Buffer, start: number, end: number): Buffer {
  const key = buf.toString('latin1', start, end);
  let head = inflatedHeads.get(key);
  if (head === undefined) {
    const plain = zlib.inflateRawSync(Buffer.concat([buf.subarray(start, end), TRAILER]), SYNC);
    head = plain.subarray(0, MARK_SEARCH + HEADER_LEN);
    if (inflatedHeads.size >= 4096) inflatedHeads.clear();
    inflatedHeads.set(key, head);
  }
  return head;
}

class Client {
  private pending: Buffer | null = null;
  private upgraded = false;
  lastSeq = -1;
  /** S7: this connection's room loop, once a `rooms` command started it. */
  churn: RoomMember | null = null;
  /** Set from the 101: 'message' when each message inflates alone, 'stream' when the server keeps its context. */
  deflate: 'message' | 'stream' | null = null;
  private inflater: zlib.InflateRaw | null = null;
  private inflating: { now: number; chunks: Buffer[] }[] = [];

  constructor(
    readonly socket: Socket,
    private readonly sio: boolean,
    private readonly onUpgrade: (ok: boolean) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (!this.upgraded) this.onUpgrade(false);
      closed++;
    });
  }

  private data(chunk: Buffer): void {
    let buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    if (!this.upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        this.pending = buf;
        return;
      }
      if (buf.toString('latin1', 0, 12) !== 'HTTP/1.1 101') {
        this.socket.destroy();
        return;
      }
      const head = buf.toString('latin1', 0, end).toLowerCase();
      if (head.includes('permessage-deflate')) this.deflate = head.includes('server_no_context_takeover') ? 'message' : 'stream';
      this.upgraded = true;
      if (this.sio) this.socket.write(SIO_CONNECT);
      this.onUpgrade(true);
      buf = buf.subarray(end + 4);
    }
    bytes += chunk.length;
    const now = nowUs();
    let off = 0;
    const n = buf.length;
    while (n - off >= 2) {
      const b0 = buf[off];
      let len = buf[off + 1] & 0x7f;
      let head = 2;
      if (len === 126) {
        if (n - off < 4) break;
        len = buf.readUInt16BE(off + 2);
        head = 4;
      } else if (len === 127) {
        if (n - off < 10) break;
        len = buf.readUInt32BE(off + 2) * 4294967296 + buf.readUInt32BE(off + 6);
        head = 10;
      }
      if (n - off < head + len) break;
      const start = off + head;
      const opcode = b0 & 0x0f;
      if ((b0 & 0x40) !== 0 && this.deflate !== null) {
        this.compressed(buf, start, start + len, now);
      } else if (opcode === 1 || opcode === 2 || opcode === 0) {
        if (len >= HEADER_LEN) this.message(buf, start, start + len, now);
        else if (this.sio && len === 1 && buf[start] === 0x32) this.socket.write(SIO_PONG); // engine.io ping "2"
        else if (this.churn !== null) this.churn.control(buf, start, len, now);
      } else if (opcode === 9) {
        this.socket.write(maskedControl(0xa, buf.subarray(start, start + len)));
      }
      off = start + len;
    }
    if (off < n) this.pending = off === 0 ? buf : buf.subarray(off);
  }

  /** An RSV1 message (unfragmented: the bench servers send whole messages). */
  private compressed(buf: Buffer, start: number, end: number, now: number): void {
    inflatedCount++;
    if (this.deflate === 'message') {
      const head = inflatedHead(buf, start, end);
      if (head.length >= HEADER_LEN) this.message(head, 0, head.length, now);
      return;
    }
    if (this.inflater === null) {
      this.inflater = zlib.createInflateRaw();
      this.inflater.on('data', (chunk: Buffer) => this.inflating[0]?.chunks.push(chunk));
    }
    const job = { now, chunks: [] as Buffer[] };
    this.inflating.push(job);
    this.inflater.write(Buffer.concat([buf.subarray(start, end), TRAILER]));
    this.inflater.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      this.inflating.shift();
      const plain = Buffer.concat(job.chunks);
      if (plain.length >= HEADER_LEN) this.message(plain, 0, plain.length, job.now);
    });
  }

  private message(buf: Buffer, start: number, end: number, now: number): void {
    const limit = Math.min(end - HEADER_LEN, start + MARK_SEARCH);
    let p = start;
    while (p <= limit && buf[p] !== MARK) p++;
    if (p > limit) return; // not a bench message (a Socket.IO handshake packet, say)
    p++;
    let seq = 0;
    for (let i = 0; i < SEQ_DIGITS; i++) seq = seq * 10 + (buf[p++] - 48);
    let ts = 0;
    for (let i = 0; i < TS_DIGITS; i++) ts = ts * 10 + (buf[p++] - 48);
    if (this.churn !== null) return this.churn.message(seq, ts, buf, p);
    if (seq < minSeq) {
      stale++; // sent before the last reset (a previous step's backlog)
      return;
    }
    if (seq <= this.lastSeq) malformed++; // a duplicate or out of order
    this.lastSeq = seq;
    received++;
    hist[histIndex(now - ts)]++;
    if (firstUs === 0) firstUs = now;
    lastUs = now;
  }
}

/**
 * The i-th connection's source address. 127.0.0.1 means no explicit bind: connect() then picks the port per
 * destination and may reuse TIME_WAIT ports on loopback (tcp_tw_reuse=2), while bind() before connect keeps
 * a port out of use for 60 s after each close, which runs a 28k-port range dry across scenarios.
 */
function source(addresses: string[], i: number): string | undefined {
  const address = addresses[i % addresses.length];
  return address === '127.0.0.1' ? undefined : address;
}

function send(message: LoadgenReply): void {
  process.send!(message);
}

function connectAll(command: Extract<LoadgenCommand, { cmd: 'connect' }>): void {
  const started = Date.now();
  let next = 0;
  let inFlight = 0;
  let ok = 0;
  let failed = 0;
  const request = (path: string): Buffer =>
    Buffer.from(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${command.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
        (command.deflate ? DEFLATE_OFFER : '') +
        '\r\n',
    );
  const pump = (): void => {
    while (inFlight < command.concurrency && next < command.count) {
      const i = next++;
      inFlight++;
      const socket = connect({ port: command.port, host: '127.0.0.1', localAddress: source(command.localAddresses, i) });
      let settled = false;
      const client = new Client(socket, command.mode === 'sio', (upgraded) => {
        if (settled) return;
        settled = true;
        inFlight--;
        if (upgraded) ok++;
        else failed++;
        if (ok + failed === command.count) send({ type: 'connected', ok, failed, ms: Date.now() - started });
        else pump();
      });
      socket.once('connect', () => socket.write(request(command.paths[i % command.paths.length])));
      clients.push(client);
    }
  };
  pump();
}

const CLOSE_FRAME = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]); // masked (zero key) close, code 1000
/** A server that has not closed the connection this long after our close frame counts as a failed cycle. */
const CLOSE_TIMEOUT_MS = 5000;

/**
 * S4: `concurrency` loops of connect, upgrade (and for Socket.IO its CONNECT packet back, sent once the
 * connection handler ran), close frame, then the server's FIN answered with ours, until `durationMs` is
 * over. A cycle counts when the socket has closed. Source addresses rotate so TIME_WAIT does not run out of ephemeral ports.
 */
function churn(command: Extract<LoadgenCommand, { cmd: 'churn' }>): void {
  const started = Date.now();
  const endAt = started + command.durationMs;
  let cycles = 0;
  let failed = 0;
  let running = 0;
  let n = 0;
  const sio = command.mode === 'sio';
  const request = (path: string): Buffer =>
    Buffer.from(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${command.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
  const requests = command.paths.map(request);
  const one = (): void => {
    if (Date.now() >= endAt) {
      if (--running === 0) send({ type: 'churned', cycles, failed, ms: Date.now() - started });
      return;
    }
    const i = n++;
    const socket = connect({ port: command.port, host: '127.0.0.1', localAddress: source(command.localAddresses, i) });
    socket.setNoDelay(true);
    let buf = '';
    let state = 0; // 0 handshake, 1 waiting for the Socket.IO CONNECT, 2 closing, 3 the server never closed
    let stuck: NodeJS.Timeout | undefined;
    // The server closes the TCP connection first (RFC 6455 §7.1.1): our FIN answers its FIN, so TIME_WAIT
    // lands on the server's side. Closing first here would hold a bound source port for 60 s per cycle,
    // and a few runs of tens of thousands of cycles exhaust the ephemeral range (seen: S4 fell to ~500/s).
    const close = (): void => {
      state = 2;
      socket.write(CLOSE_FRAME);
      stuck = setTimeout(() => {
        state = 3;
        socket.destroy();
      }, CLOSE_TIMEOUT_MS);
    };
    socket.on('data', (chunk: Buffer) => {
      if (state >= 2) return;
      buf += chunk.toString('latin1');
      if (state === 0) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          return;
        }
        buf = buf.slice(end + 4);
        if (!sio) return close();
        state = 1;
        socket.write(SIO_CONNECT);
      }
      if (state === 1 && buf.includes('40{')) close();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(stuck);
      if (state === 2) cycles++;
      else failed++;
      one();
    });
    socket.once('connect', () => socket.write(requests[i % requests.length]));
  };
  for (let i = 0; i < command.concurrency; i++) {
    running++;
    one();
  }
}

process.on('message', (command: LoadgenCommand) => {
  switch (command.cmd) {
    case 'connect':
      connectAll(command);
      break;
    case 'churn':
      churn(command);
      break;
    case 'rooms': {
      const churn = new RoomChurn(command, send);
      for (const client of clients) client.churn = churn.member(client.socket);
      churn.start();
      break;
    }
    case 'stats':
      send({ type: 'stats', received, firstUs, lastUs, hist: packHist(hist), closed, malformed, stale, bytes, inflated: inflatedCount });
      break;
    case 'reset':
      hist.fill(0);
      received = 0;
      firstUs = 0;
      lastUs = 0;
      malformed = 0;
      stale = 0;
      bytes = 0;
      inflatedCount = 0;
      minSeq = command.minSeq;
      epoch = command.epoch;
      break;
    case 'progress': {
      if (progressTimer) clearInterval(progressTimer);
      progressTimer = null;
      if (command.intervalMs > 0) {
        let reported = -1;
        progressTimer = setInterval(() => {
          if (received === reported) return;
          reported = received;
          send({ type: 'progress', received, epoch });
        }, command.intervalMs);
      }
      break;
    }
    case 'exit':
      for (const client of clients) client.socket.destroy();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
