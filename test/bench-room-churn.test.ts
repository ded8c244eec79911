// S7's judgment in the load generator: which room messages count as lost, twice, or for a room already left.
import type { Socket } from 'node:net';
import { ROOM_SPAN, RoomChurn, type RoomMember } from '../bench/room-churn';
import { HEADER_LEN } from '../bench/protocol';

/** A bench room message's payload: header digits, then the previous send time; `p` points after the header. */
function message(member: RoomMember, room: number, counter: number, ts: number, previousTs: number): void {
  const buf = Buffer.from(`#${String(room * ROOM_SPAN + counter).padStart(10, '0')}${String(ts).padStart(16, '0')}${String(previousTs).padStart(16, '0')}`);
  member.message(room * ROOM_SPAN + counter, ts, buf, HEADER_LEN);
}

describe('RoomChurn', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function joined(): { churn: RoomChurn; member: RoomMember; room: number; writes: string[] } {
    const writes: string[] = [];
    const socket = { write: (b: Buffer) => writes.push(b.subarray(6).toString()) } as unknown as Socket;
    const churn = new RoomChurn({ cmd: 'rooms', mode: 'ws', prefix: 'r', rooms: 5, dwellMs: 60_000, durationMs: 60_000 }, () => undefined);
    const member = churn.member(socket);
    churn.start();
    const room = Number(/^j:r(\d+)$/.exec(writes[0])![1]);
    member.control(Buffer.from('ok j:r'), 0, 6, 1000); // the join acknowledged at t = 1000 µs
    return { churn, member, room, writes };
  }

  test('a gap after the acknowledgement is lost; one before it is not', () => {
    const { churn, member, room } = joined();
    message(member, room, 5, 990, 980); // its predecessor went before the ack: may be missed
    expect(churn.totals).toMatchObject({ joins: 1, received: 1, lost: 0 });
    message(member, room, 6, 1100, 990);
    message(member, room, 9, 1400, 1300); // 7 and 8 were sent after 6 (after the ack)
    expect(churn.totals).toMatchObject({ received: 3, lost: 2 });
  });

  test('the first message seen after the ack, whose predecessor went after the ack, means one lost', () => {
    const { churn, member, room } = joined();
    message(member, room, 3, 1200, 1100);
    expect(churn.totals.lost).toBe(1);
  });

  test('twice is counted, and a message for a room left is late only if sent before the leave was acknowledged', () => {
    const { churn, member, room, writes } = joined();
    message(member, room, 1, 1100, 1050);
    message(member, room, 1, 1100, 1050);
    expect(churn.totals.duplicates).toBe(1);
    jest.advanceTimersByTime(60_000); // the dwell: the client leaves
    expect(writes[1]).toBe(`l:r${room}`);
    member.control(Buffer.from('ok l:r'), 0, 6, 2000);
    expect(churn.totals.leaves).toBe(1);
    message(member, room, 2, 1900, 1100);
    message(member, room, 3, 2100, 1900);
    expect(churn.totals).toMatchObject({ late: 1, strays: 1 });
  });
});
