// S7's client side, in the load generator: each open connection joins a room, stays `dwellMs`, leaves, joins
// another, and checks that every message sent to a room after its join was acknowledged arrives, and once.
import type { Socket } from 'node:net';
import type { LoadgenCommand, LoadgenReply } from './protocol';
import { TS_DIGITS, nowUs } from './protocol';

/**
 * A room message's sequence number is `room × ROOM_SPAN + the room's own counter` (0, 1, 2, …), and the 16
 * digits after the header are the send time of the room's previous message (0 for the first): so a client
 * knows which room a message is for and whether the one before it was sent after its join was acknowledged.
 */
export const ROOM_SPAN = 1_000_000;

type Command = Extract<LoadgenCommand, { cmd: 'rooms' }>;
type Totals = Omit<Extract<LoadgenReply, { type: 'roomed' }>, 'type' | 'ms'>;

/** A request with no answer for this long counts as a timeout and stops that client's loop. */
const ACK_TIMEOUT_MS = 10_000;
/** How long after the last client stopped the totals still count arrivals. */
const GRACE_MS = 1000;

const enum State {
  idle,
  joining,
  inside,
  leaving,
  done,
}

/** A masked client text frame with an all-zero key (payload under 126 bytes). */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

/** The loop of every client of one load generator, and the totals it reports. */
export class RoomChurn {
  readonly totals: Totals = { joins: 0, leaves: 0, received: 0, lost: 0, duplicates: 0, strays: 0, late: 0, timeouts: 0 };
  private readonly members: RoomMember[] = [];
  private running = 0;
  private readonly started = Date.now();
  readonly endAt: number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    readonly command: Command,
    private readonly reply: (message: LoadgenReply) => void,
  ) {
    this.endAt = this.started + command.durationMs;
    this.sweeper = setInterval(() => this.sweep(), 1000);
  }

  member(socket: Socket): RoomMember {
    const member = new RoomMember(socket, this);
    this.members.push(member);
    return member;
  }

  start(): void {
    this.running = this.members.length;
    if (this.running === 0) this.finish();
    for (const member of this.members) member.next();
  }

  /** A member stopped (the time is up, or a request timed out). */
  stopped(): void {
    if (--this.running === 0) this.finish();
  }

  private sweep(): void {
    const limit = nowUs() - ACK_TIMEOUT_MS * 1000;
    for (const member of this.members) member.expire(limit);
  }

  /** Replies a second after the last client stopped, so that messages still on their way are judged too. */
  private finish(): void {
    clearInterval(this.sweeper);
    const ms = Date.now() - this.started;
    setTimeout(() => this.reply({ type: 'roomed', ...this.totals, ms }), GRACE_MS);
  }
}

/** One connection's place in the churn: which room it is in, and what it has received there. */
export class RoomMember {
  private state = State.idle;
  private room = -1;
  /** When the join's acknowledgement arrived: messages sent from then on must all arrive. */
  private ackUs = Infinity;
  private lastCounter = -1;
  private lastTs = 0;
  private previousRoom = -1;
  /** When the previous room's leave was acknowledged: its messages sent before then may still come. */
  private leftUs = 0;
  private requestUs = 0;
  private sioId = 0;

  constructor(
    private readonly socket: Socket,
    private readonly churn: RoomChurn,
  ) {}

  /** Joins another room, or stops once the time is up. */
  next(): void {
    if (this.state === State.done) return;
    if (Date.now() >= this.churn.endAt) {
      this.state = State.done;
      this.churn.stopped();
      return;
    }
    const { rooms } = this.churn.command;
    let room = Math.floor(Math.random() * rooms);
    if (room === this.previousRoom && rooms > 1) room = (room + 1) % rooms;
    this.room = room;
    this.ackUs = Infinity;
    this.lastCounter = -1;
    this.state = State.joining;
    this.request('j');
  }

  private request(verb: 'j' | 'l'): void {
    const name = this.churn.command.prefix + this.room;
    this.requestUs = nowUs();
    // channelkit's bench consumer reads `j:<room>`; Socket.IO gets an event with an acknowledgement id.
    this.socket.write(textFrame(this.churn.command.mode === 'sio' ? `42${++this.sioId}["${verb}","${name}"]` : `${verb}:${name}`));
  }

  /** A frame too short to be a bench message: an acknowledgement (`ok …`, or Socket.IO's `43<id>[…]`)? */
  control(buf: Buffer, start: number, len: number, now: number): void {
    const isAck = this.churn.command.mode === 'sio' ? len >= 2 && buf[start] === 0x34 && buf[start + 1] === 0x33 : len >= 2 && buf[start] === 0x6f && buf[start + 1] === 0x6b;
    if (!isAck) return;
    if (this.state === State.joining) {
      this.state = State.inside;
      this.ackUs = now;
      this.churn.totals.joins++;
      setTimeout(() => {
        if (this.state !== State.inside) return;
        this.state = State.leaving;
        this.request('l');
      }, this.churn.command.dwellMs);
    } else if (this.state === State.leaving) {
      this.churn.totals.leaves++;
      this.previousRoom = this.room;
      this.leftUs = now;
      this.room = -1;
      this.state = State.idle;
      this.next();
    }
  }

  /** A bench message; `p` is where the previous send time's digits start (right after the header). */
  message(seq: number, ts: number, buf: Buffer, p: number): void {
    const room = Math.floor(seq / ROOM_SPAN);
    const counter = seq - room * ROOM_SPAN;
    const { totals } = this.churn;
    if (room !== this.room) {
      // Sent before the leave was acknowledged: it may still be on its way. Anything else is a message for a room this client is not in.
      if (room === this.previousRoom && ts < this.leftUs) totals.late++;
      else totals.strays++;
      return;
    }
    let previousTs = 0;
    for (let i = 0; i < TS_DIGITS; i++) previousTs = previousTs * 10 + (buf[p++] - 48);
    if (counter <= this.lastCounter) {
      totals.duplicates++; // twice, or out of order
      return;
    }
    if (this.lastCounter >= 0) {
      const gap = counter - this.lastCounter - 1;
      // Everything between the last one received and this one was sent after the last one; the one just before this, at previousTs.
      if (gap > 0) totals.lost += this.lastTs >= this.ackUs ? gap : previousTs >= this.ackUs ? 1 : 0;
    } else if (counter > 0 && previousTs >= this.ackUs) {
      totals.lost++; // the first message seen here, and the one before it was sent after the join was acknowledged
    }
    this.lastCounter = counter;
    this.lastTs = ts;
    totals.received++;
  }

  /** A request unanswered since before `limitUs`: counted, and this client stops. */
  expire(limitUs: number): void {
    if ((this.state === State.joining || this.state === State.leaving) && this.requestUs < limitUs) {
      this.churn.totals.timeouts++;
      this.state = State.done;
      this.churn.stopped();
    }
  }
}
