// One hostile stream against a fresh raw peer, and whether the server answered as expected.
import type { Socket } from 'node:net';
import { openPeer, waitUntil } from '../support/raw-peer';
import { closeFrame } from './client-frames';
import { ROOM_PATH } from './settings';

/** Same text as the server will produce: the layer's msgpack round trip replaces lone surrogates in long strings. */
export const wellFormed = (value: string) => Buffer.from(value).toString();
/** Writes `bytes` in `cuts.length + 1` pieces, one event-loop turn apart. */
export async function writeInPieces(socket: Socket, bytes: Buffer, cuts: number[]): Promise<void> {
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
    if (socket.destroyed) return;
    socket.write(bytes.subarray(from, cut));
    from = cut;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export interface Expectation {
  close?: number[];
  pongs?: Buffer[];
  echoes?: string[];
  errors?: number;
  /** The stream ends mid-frame: nothing must come back, the server waits. */
  partial?: boolean;
  /** Bytes follow a well-formed close frame: a reset instead of the close echo is fine (Prediction.resetAfterClose). */
  mayReset?: boolean;
}

/** Runs one stream against a fresh peer; returns a description of what went wrong, or null. */
export async function runStream(port: number, bytes: Buffer, expected: Expectation, cuts: number[] = [], early = false): Promise<string | null> {
  const peer = await openPeer(port, ROOM_PATH, early ? bytes : undefined);
  try {
    if (!early) await writeInPieces(peer.socket, bytes, cuts);
    if (expected.close && expected.close.length > 0) {
      await waitUntil(peer, () => peer.closeCode !== null, 5000);
      if (peer.closeCode === null && peer.ended && expected.mayReset) return null;
      if (peer.closeCode === null) return `expected close ${expected.close.join('|')}, got ${peer.ended ? 'a dropped socket' : 'nothing'}`;
      if (!expected.close.includes(peer.closeCode)) return `expected close ${expected.close.join('|')}, got ${peer.closeCode}`;
      return null;
    }
    const echoes = (expected.echoes ?? []).map(wellFormed);
    const pongs = expected.pongs ?? [];
    const errors = expected.errors ?? 0;
    const seen = () => {
      const mine = peer.texts.map((t) => JSON.parse(t) as { message?: string; error?: string });
      const got = mine.filter((m) => typeof m.message === 'string').map((m) => wellFormed(m.message!));
      return {
        echoesOk: echoes.every((e) => got.includes(e)),
        errors: mine.filter((m) => m.error !== undefined).length,
      };
    };
    const complete = () => {
      const s = seen();
      return s.echoesOk && s.errors >= errors && peer.pongs.length >= pongs.length;
    };
    await waitUntil(peer, () => complete() || peer.closeCode !== null, 5000);
    if (peer.closeCode !== null) return `expected the socket to stay open, got close ${peer.closeCode}`;
    const s = seen();
    if (!s.echoesOk) return `missing broadcast of our message(s); got ${peer.texts.length} text frames`;
    if (s.errors !== errors) return `expected ${errors} error frames, got ${s.errors}`;
    if (peer.pongs.length !== pongs.length || pongs.some((p, i) => !p.equals(peer.pongs[i]))) {
      return `expected pongs ${pongs.map((p) => p.toString('hex')).join(',')}, got ${peer.pongs.map((p) => p.toString('hex')).join(',')}`;
    }
    if (expected.partial) {
      await peer.changed(100);
      return peer.closeCode === null ? null : `partial frame answered with close ${peer.closeCode}`;
    }
    // Still a working socket: a clean close is answered in kind.
    peer.socket.write(closeFrame(1000, 'done'));
    await waitUntil(peer, () => peer.closeCode !== null, 3000);
    return peer.closeCode === 1000 ? null : `clean close answered with ${peer.closeCode}`;
  } finally {
    peer.socket.destroy();
  }
}
