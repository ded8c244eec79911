import type { Socket } from 'node:net';
import { Outbox } from '../../src/server/outbox';

/** Records what reaches the socket: each uncorked batch is one write (one syscall in Node). */
class FakeSocket {
  writes: string[][] = [];
  destroyed = false;
  writable = true;
  /** Bytes the socket holds unsent (Node's writableLength): the backlog a bounded outbox counts. */
  writableLength = 0;
  private corked: string[] | null = null;
  cork(): void {
    this.corked = [];
  }
  uncork(): void {
    this.writes.push(this.corked!);
    this.corked = null;
  }
  write(chunk: Buffer): boolean {
    if (this.corked) this.corked.push(chunk.toString());
    else this.writes.push([chunk.toString()]);
    return true;
  }
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('Outbox', () => {
  test('frames queued in one turn reach the socket as one write, in order', async () => {
    const socket = new FakeSocket();
    const outbox = new Outbox(socket as unknown as Socket);
    for (const frame of ['a', 'b', 'c']) outbox.push(Buffer.from(frame));
    expect(socket.writes).toEqual([]);
    expect(outbox.pendingBytes).toBe(3);
    await nextTurn();
    expect(socket.writes).toEqual([['abc']]); // small frames: copied into one buffer
    expect(outbox.pendingBytes).toBe(0);
    outbox.push(Buffer.from('d'));
    await nextTurn();
    expect(socket.writes).toEqual([['abc'], ['d']]);
  });

  test('flush() writes at once (before a close frame), and a destroyed socket gets nothing', async () => {
    const socket = new FakeSocket();
    const outbox = new Outbox(socket as unknown as Socket);
    outbox.push(Buffer.from('x'));
    outbox.flush();
    expect(socket.writes).toEqual([['x']]);
    await nextTurn(); // the turn's scheduled flush finds nothing left to write
    expect(socket.writes).toEqual([['x']]);
    outbox.push(Buffer.from('z'));
    await nextTurn();
    expect(socket.writes).toEqual([['x'], ['z']]);
    socket.destroyed = true;
    outbox.push(Buffer.from('y'));
    await nextTurn();
    expect(socket.writes).toEqual([['x'], ['z']]);
  });

  test('every socket\'s frames of a turn go out in that turn\'s one flush', async () => {
    const sockets = [new FakeSocket(), new FakeSocket()];
    const outboxes = sockets.map((socket) => new Outbox(socket as unknown as Socket));
    for (let i = 0; i < 3; i++) for (const outbox of outboxes) outbox.push(Buffer.from(String(i)));
    await nextTurn();
    expect(sockets.map((socket) => socket.writes)).toEqual([[['012']], [['012']]]);
  });

  test('sockets that queued the same frames in a turn write one shared copy; others their own', async () => {
    const chunks: Buffer[] = [];
    const socket = () => ({ destroyed: false, writable: true, write: (chunk: Buffer) => chunks.push(chunk) }) as unknown as Socket;
    const [a, b, c] = [new Outbox(socket()), new Outbox(socket()), new Outbox(socket())];
    const one = Buffer.from('1');
    const two = Buffer.from('2');
    for (const outbox of [a, b]) {
      outbox.push(one);
      outbox.push(two);
    }
    c.push(one);
    c.push(Buffer.from('2'));
    await nextTurn();
    expect(chunks.map(String)).toEqual(['12', '12', '12']);
    expect(chunks[1]).toBe(chunks[0]);
    expect(chunks[2]).not.toBe(chunks[0]);
  });

  test('a bounded outbox writes the frames that fit beside the socket\'s backlog and reports the rest', async () => {
    class Bounded extends Outbox {
      refused: [number, number][] = [];
      keepWriting = true;
      isOpen = true;
      protected override get open(): boolean {
        return this.isOpen;
      }
      protected override get maxBacklog(): number {
        return 10;
      }
      protected override overBacklog(count: number, bytes: number): boolean {
        this.refused.push([count, bytes]);
        return this.keepWriting;
      }
    }
    const socket = new FakeSocket();
    const outbox = new Bounded(socket as unknown as Socket);
    // A frame goes while what is queued before it (backlog included) is within the bound.
    socket.writableLength = 4;
    for (const frame of ['aaa', 'bbbb', 'cc', 'd']) outbox.push(Buffer.from(frame));
    await nextTurn();
    expect(socket.writes).toEqual([['aaabbbb']]);
    expect(outbox.refused).toEqual([[2, 3]]);
    // One frame larger than the bound goes when nothing is queued before it.
    socket.writableLength = 0;
    outbox.push(Buffer.from('x'.repeat(20)));
    await nextTurn();
    expect(socket.writes[1]).toEqual(['x'.repeat(20)]);
    expect(outbox.refused).toHaveLength(1);
    // A subclass that closes the socket instead gets nothing written.
    outbox.keepWriting = false;
    socket.writableLength = 8;
    outbox.push(Buffer.from('eee'));
    outbox.push(Buffer.from('f'));
    await nextTurn();
    expect(socket.writes).toHaveLength(2);
    expect(outbox.refused).toEqual([[2, 3], [1, 1]]);
    // Once closed, nothing more is written.
    outbox.isOpen = false;
    socket.writableLength = 0;
    outbox.push(Buffer.from('g'));
    await nextTurn();
    expect(socket.writes).toHaveLength(2);
  });

  test('past 64 KiB queued, frames go as one corked writev without copying', async () => {
    const socket = new FakeSocket();
    const outbox = new Outbox(socket as unknown as Socket);
    const big = 'x'.repeat(40 * 1024);
    outbox.push(Buffer.from(big));
    outbox.push(Buffer.from(big));
    await nextTurn();
    expect(socket.writes).toEqual([[big, big]]);
  });
});
