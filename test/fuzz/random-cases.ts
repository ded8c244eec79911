// Random streams: frames (valid, broken, fragmented), bit flips and garbage, drawn from the seeded source.
import { type FrameSpec, encodeFrame } from './client-frames';
import type { Rng } from './random';
import { MAX_PAYLOAD } from './settings';
import { tag } from './crafted-cases';

export const NASTY_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'polluted', 'message', 'type'];

export function randomString(rng: Rng): string {
  const pieces = ['a', 'é', '€', '😀', '\u0000', '\\', '"', '\ud800', '\udfff', '\u2028', 'fuzz', ' '];
  let out = '';
  const length = rng.int(12);
  for (let i = 0; i < length; i++) out += rng.pick(pieces);
  return out;
}

export function randomJson(rng: Rng, depth = 0): unknown {
  const roll = rng.int(depth > 4 ? 5 : 8);
  if (roll === 0) return null;
  if (roll === 1) return rng.pick([0, -0, 1e308, -1e-308, 2 ** 53 + 1, 3.14, -42]);
  if (roll === 2) return rng.chance(0.5);
  if (roll <= 4) return randomString(rng);
  if (roll === 5) return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1));
  const object: Record<string, unknown> = {};
  for (let i = rng.int(4); i > 0; i--) Object.defineProperty(object, rng.chance(0.5) ? rng.pick(NASTY_KEYS) : randomString(rng), { value: randomJson(rng, depth + 1), enumerable: true, configurable: true, writable: true });
  return object;
}

/** A text payload: mostly JSON (often a chat message with nasty neighbours), sometimes broken. */
export function randomTextPayload(rng: Rng, iteration: number): Buffer {
  const roll = rng.int(10);
  if (roll < 5) {
    const value = { message: `${tag(`r${iteration}`)}:${randomString(rng)}` } as Record<string, unknown>;
    for (let i = rng.int(3); i > 0; i--) Object.defineProperty(value, rng.pick(NASTY_KEYS.filter((k) => k !== 'message')), { value: randomJson(rng), enumerable: true, configurable: true, writable: true });
    return Buffer.from(JSON.stringify(value));
  }
  if (roll < 7) return Buffer.from(JSON.stringify(randomJson(rng)) ?? 'null');
  if (roll === 7) {
    const json = Buffer.from(JSON.stringify({ message: randomString(rng) }));
    return json.subarray(0, rng.int(json.length));
  }
  if (roll === 8) return rng.bytes(rng.int(16));
  return Buffer.from(rng.pick(['[', '{', '{"message":', '"\\ud800"', '{"message":"\\u0000"}', '1e99999', `{"message":"${'x'.repeat(rng.int(70_000))}"}`]));
}

export function randomFrame(rng: Rng, iteration: number, midMessage: boolean): FrameSpec {
  const opcode = rng.chance(0.9)
    ? rng.pick(midMessage ? [0, 0, 0, 9, 10, 1] : [1, 1, 1, 1, 2, 9, 10, 8, 0])
    : rng.int(16);
  const spec: FrameSpec = { opcode, fin: opcode >= 8 ? rng.chance(0.95) : rng.chance(0.8), rsv: rng.chance(0.05) ? 1 + rng.int(7) : 0, masked: rng.chance(0.97) };
  if (opcode === 8) {
    const code = rng.pick([1000, 1001, 1003, 1005, 1006, 1011, 1015, 3000, 4999, 5000, rng.int(65536)]);
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    spec.payload = rng.chance(0.1) ? Buffer.alloc(rng.int(2)) : Buffer.concat([body, rng.chance(0.2) ? rng.bytes(rng.int(4)) : Buffer.from(randomString(rng))]);
  } else if (opcode >= 8) spec.payload = rng.bytes(rng.chance(0.9) ? rng.int(126) : 126 + rng.int(200));
  else if (opcode === 2) spec.payload = rng.bytes(rng.int(64));
  else spec.payload = randomTextPayload(rng, iteration);
  if (rng.chance(0.03)) spec.declaredLength = rng.pick([MAX_PAYLOAD + 1, 2 ** 40, 70_000, 300]);
  return spec;
}

export interface RandomCase {
  bytes: Buffer;
  cuts: number[];
  kind: string;
}

export function randomCase(rng: Rng, iteration: number): RandomCase {
  const roll = rng.int(20);
  let bytes: Buffer;
  let kind: string;
  if (roll < 3) {
    kind = 'garbage';
    bytes = rng.bytes(1 + rng.int(200));
  } else {
    const frames: Buffer[] = [];
    let mid = false;
    for (let i = 1 + rng.int(5); i > 0; i--) {
      const spec = randomFrame(rng, iteration, mid);
      frames.push(encodeFrame({ ...spec, mask: rng.bytes(4) }));
      if (spec.declaredLength !== undefined) break;
      if (spec.opcode === 1 || spec.opcode === 2) mid = !spec.fin;
      if (spec.opcode === 0 && spec.fin) mid = false;
    }
    bytes = Buffer.concat(frames);
    kind = 'frames';
    if (roll < 6) {
      kind = 'flipped';
      bytes = Buffer.from(bytes);
      for (let i = 1 + rng.int(3); i > 0; i--) bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
    }
  }
  const cuts = Array.from({ length: rng.int(4) }, () => rng.int(bytes.length));
  return { bytes, cuts, kind };
}
