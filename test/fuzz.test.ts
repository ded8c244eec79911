// Hostile input: random and crafted bytes at the chat room's JSON consumer on a real Server, while
// healthy clients in the same room keep chatting. Fixed seed in CI; FUZZ_SEED / FUZZ_ITERATIONS for
// longer runs, e.g. `FUZZ_ITERATIONS=20000 FUZZ_SEED=7 npx jest test/fuzz.test.ts`. Each test opens its own server and
// room (test/fuzz/room.ts), so any one runs alone (`npx jest test/fuzz.test.ts -t crafted`) and in any order; the pieces
// are in test/fuzz/: random.ts, client-frames.ts, oracle.ts, run-stream.ts (the raw peer is test/support/raw-peer.ts), crafted-cases.ts, random-cases.ts, http-cases.ts.
//
// What the server answers (ws 8's receiver, then JsonWebsocketConsumer and the chat consumer):
//
// | input, after a completed handshake                                | answer                               |
// | ----------------------------------------------------------------- | ------------------------------------ |
// | text frame with invalid UTF-8 (also split across fragments)       | close 1007 (ws)                      |
// | text frame that is not JSON ('', '{oops', '[[[[' x 100k unclosed) | close 1007 (consumer)                |
// | JSON that is not {"message": "<string>"} (100k-deep arrays or     | {"error": ...} frame, socket stays   |
// |   objects, 1e999, a 10k-digit number, null, 42, "str", {})        |                                      |
// | {"message": "<string>", ...anything} (__proto__, constructor,     | the message, to everyone in the room |
// |   prototype keys, huge numbers beside it)                         |   and no prototype is polluted       |
// | {"__proto__": {"message": "x"}}                                   | {"error": ...}: JSON.parse makes an  |
// |                                                                   |   own key, never a prototype         |
// | binary frame (also empty)                                         | close 1003 (consumer)                |
// | ping with payload (0..125 bytes)                                  | pong with the same payload           |
// | unsolicited pong                                                  | ignored                              |
// | ping/close payload > 125 bytes, close payload of 1 byte           | close 1002                           |
// | control frame without FIN (fragmented control)                    | close 1002                           |
// | unmasked client frame                                             | close 1002                           |
// | RSV1/RSV2/RSV3 set (no extension negotiated)                      | close 1002                           |
// | reserved opcode 3-7, 0xB-0xF                                      | close 1002                           |
// | continuation with no message started; text/binary mid-message     | close 1002                           |
// | fragmented message (fragments of any size, pings in between)      | reassembled, handled as one message  |
// | more than 16,384 fragments in one message                         | close 1008 (ws maxFragments)         |
// | frame or message (sum of fragments) over maxPayload (1 MiB)       | close 1009, from the header alone    |
// | 64-bit length >= 2^53                                             | close 1009                           |
// | close frame with a valid code (1000-1003, 1007-1014, 3000-4999)   | the same code echoed                 |
// | close frame, empty                                                | close frame with no code (1005)      |
// | close code 0-999, 1004-1006, 1015-2999, 5000+                     | close 1002                           |
// | close reason that is not UTF-8                                    | close 1007                           |
// | more bytes after a well-formed close frame (a client must not     | the echo, or a reset: the server     |
// |   send any)                                                       |   closes TCP once the handshake is   |
// |                                                                   |   done, as RFC 6455 §5.5.1 says      |
// | random bytes, or a valid stream with flipped bits                 | as the model in `predict()` says:    |
// |                                                                   |   one of the above, or waits for more|
// | frames sent in the same write as the handshake request            | handled like any other frame         |
//
// | HTTP, before any upgrade                                          | answer                               |
// | ----------------------------------------------------------------- | ------------------------------------ |
// | not HTTP, bad header bytes, bad Content-Length, request w/o Host,  | 400                                  |
// |   headers over 16 KiB                                             |                                      |
// | upgrade with method POST/PUT/DELETE/PATCH                         | 400                                  |
// | Sec-WebSocket-Key missing, short, long or not base64              | 400                                  |
// | Sec-WebSocket-Version missing, 12, 14, 'abc', '13, 8'             | 400 (8 and 13 are accepted: 101)     |
// | Upgrade: h2c                                                      | 400                                  |
// | path with bad percent-encoding                                    | 400                                  |
// | no route, room name the route refuses                             | 404                                  |
// | Origin not allowed                                                | 403                                  |
// | POST to a WebSocket path without upgrade headers                  | 404                                  |
// | half a request, then silence                                      | nothing (yet); the server stays fine |
// | half a request, then FIN                                          | 400, or the socket just closes       |
// | a mutated handshake request (fuzzed)                              | 101, 400, 403, 404 or a plain close  |
// | upgrade without Host (RFC 6455 §4.2.1)                            | 400                                  |
//
// Throughout each test: six healthy clients in the same room send a message every 50 ms and each must
// receive every healthy message exactly once; no socket of theirs closes; afterwards /healthz is
// 200, the server holds only the healthy sockets, nothing was logged at error level and
// Object.prototype is unchanged.
import { connect as tcpConnect } from 'node:net';
import { craftedCases } from './fuzz/crafted-cases';
import { httpAnswer, httpCases, mutatedRequest } from './fuzz/http-cases';
import { predict } from './fuzz/oracle';
import { runStream } from './fuzz/run-stream';
import { handshakeRequest } from './support/raw-peer';
import { Rng } from './fuzz/random';
import { randomCase } from './fuzz/random-cases';
import { inRoom, pool } from './fuzz/room';
import { CONCURRENCY, ITERATIONS, ROOM_PATH, SEED } from './fuzz/settings';

describe(`fuzz: hostile input at the chat consumer (seed ${SEED}, ${ITERATIONS} random cases)`, () => {
  test('the oracle agrees with the documented answer of each crafted case', () => {
    for (const c of craftedCases()) {
      const model = predict(c.bytes);
      if (c.expect.close) expect({ name: c.name, closes: model.closes }).toEqual({ name: c.name, closes: c.expect.close });
      else if (c.expect.partial) expect({ name: c.name, partial: model.partial, closes: model.closes }).toEqual({ name: c.name, partial: true, closes: [] });
      else {
        expect({ name: c.name, closes: model.closes, echoes: model.echoes, errors: model.errors, pongs: model.pongs.length }).toEqual({
          name: c.name,
          closes: [],
          echoes: c.expect.echoes ?? [],
          errors: c.expect.errors ?? 0,
          pongs: (c.expect.pongs ?? []).length,
        });
      }
    }
  });

  describe('against a live room', () => {
    test('crafted frames get their documented answers; the healthy room is unharmed', () =>
      inRoom(async (room) => {
        const failures: string[] = [];
        await pool(craftedCases(), CONCURRENCY, async (c) => {
          const problem = await runStream(room.port, c.bytes, c.expect, [], c.early);
          if (problem) failures.push(`crafted "${c.name}": ${problem}`);
        });
        expect(failures).toEqual([]);
      }), 60_000);

    test('random frames, bit flips and garbage get what the oracle predicts; the healthy room is unharmed', () =>
      inRoom(async (room) => {
        const failures: string[] = [];
        const rng = new Rng(SEED);
        const cases = Array.from({ length: ITERATIONS }, (_, i) => ({ i, ...randomCase(rng, i) }));
        const kinds: Record<string, number> = {};
        const outcomes: Record<string, number> = {};
        await pool(cases, CONCURRENCY, async (c) => {
          const model = predict(c.bytes);
          kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
          const outcome = model.closes.length ? `close ${model.closes.join('|')}` : model.partial ? 'waits (partial)' : 'open';
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          const problem = await runStream(room.port, c.bytes, { close: model.closes, pongs: model.pongs, echoes: model.echoes, errors: model.errors, partial: model.partial, mayReset: model.resetAfterClose }, c.cuts);
          if (problem) failures.push(`random #${c.i} (${c.kind}, seed ${SEED}, ${c.bytes.length} bytes ${c.bytes.subarray(0, 48).toString('hex')}): ${problem}`);
        });
        process.stdout.write(`fuzz seed ${SEED}: ${ITERATIONS} random cases ${JSON.stringify(kinds)}; predicted ${JSON.stringify(outcomes)}\n`);
        expect(failures.slice(0, 20)).toEqual([]);
      }), 600_000);

    test('bad and half-open HTTP gets 400/403/404 or nothing; mutated handshakes never break the server; the healthy room is unharmed', () =>
      inRoom(async (room) => {
        const problems: string[] = [];
        await pool(httpCases(), CONCURRENCY, async (c) => {
          const status = await httpAnswer(room.port, c.request, { end: c.end, waitMs: c.waitMs });
          if (!c.expect.includes(status)) problems.push(`"${c.name}": expected ${c.expect.join('|')}, got ${status}`);
        });
        const rng = new Rng(SEED ^ 0x5eed);
        const mutated = Array.from({ length: Math.max(50, Math.floor(ITERATIONS / 4)) }, () => mutatedRequest(rng));
        await pool(mutated, CONCURRENCY, async (request) => {
          const status = await httpAnswer(room.port, request, { end: rng.chance(0.5), waitMs: 300 });
          if (![101, 400, 403, 404, null].includes(status)) problems.push(`mutated ${JSON.stringify(request.toString('latin1'))}: got ${status}`);
        });
        // Clients that reset right after their upgrade request; the room is checked once their sockets are gone.
        await Promise.all(
          Array.from(
            { length: 10 },
            () =>
              new Promise<void>((resolve) => {
                const socket = tcpConnect(room.port, '127.0.0.1', () => {
                  socket.write(handshakeRequest(ROOM_PATH));
                  socket.resetAndDestroy();
                });
                socket.on('error', () => undefined);
                socket.on('close', () => resolve());
              }),
          ),
        );
        expect(problems).toEqual([]);
      }), 60_000);
  });
});
