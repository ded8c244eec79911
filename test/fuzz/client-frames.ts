// WebSocket frames as a client writes them, valid or not: any opcode, RSV bits, mask, or a length the header only claims.
import { randomBytes } from 'node:crypto';

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  /** RSV1..3 as bits 0x4, 0x2, 0x1. */
  rsv?: number;
  masked?: boolean;
  mask?: Buffer;
  /** The header claims this length; only the header (and mask) is written. */
  declaredLength?: number;
}

export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  const masked = spec.masked ?? true;
  const length = spec.declaredLength ?? payload.length;
  const b0 = ((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | (spec.opcode & 0x0f);
  let header: Buffer;
  if (length < 126) header = Buffer.from([b0, length]);
  else if (length < 65536) {
    header = Buffer.alloc(4);
    header[0] = b0;
    header[1] = 126;
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = b0;
    header[1] = 127;
    header.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    header.writeUInt32BE(length % 2 ** 32, 6);
  }
  if (masked) header[1] |= 0x80;
  if (spec.declaredLength !== undefined) return masked ? Buffer.concat([header, spec.mask ?? randomBytes(4)]) : header;
  if (!masked) return Buffer.concat([header, payload]);
  const mask = spec.mask ?? randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([header, mask, body]);
}

export const text = (payload: Buffer | string, extra: Partial<FrameSpec> = {}) => encodeFrame({ opcode: 1, payload, ...extra });
export const closeFrame = (code: number, reason: Buffer | string = '') => {
  const body = Buffer.alloc(2);
  body.writeUInt16BE(code);
  return encodeFrame({ opcode: 8, payload: Buffer.concat([body, Buffer.from(reason)]) });
};
export const ping = (payload: Buffer | string, extra: Partial<FrameSpec> = {}) => encodeFrame({ opcode: 9, payload, ...extra });
