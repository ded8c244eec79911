// The oracle: what ws's receiver, then the JSON and chat consumers, answer to a byte stream from a client.
import { MAX_FRAGMENTS, MAX_PAYLOAD } from './settings';

export interface Prediction {
  /** Acceptable codes of the first close frame from the server; empty: the socket stays open. */
  closes: number[];
  /** Until the first close: pong payloads, chat messages broadcast back, {"error"} frames. */
  pongs: Buffer[];
  echoes: string[];
  errors: number;
  /** The stream stopped mid-frame (the server waits for the rest). */
  partial: boolean;
  /**
   * A well-formed close frame with more bytes after it. The server closes TCP as soon as the closing
   * handshake is done (RFC 6455 §5.5.1: "immediately"); bytes the client sends after its close frame
   * can meet the closed socket, and the client's write then fails with a reset, which may come before
   * the client has read the server's close frame.
   */
  resetAfterClose: boolean;
}

export function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

export function validUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** The chat consumer's answer to one complete text message that is valid UTF-8. */
export function chatAnswer(body: string): { close?: number; echo?: string; error?: true } {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { close: 1007 };
  }
  const message = (value as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? { echo: message } : { error: true };
}

export function predict(stream: Buffer): Prediction {
  const out: Prediction = { closes: [], pongs: [], echoes: [], errors: 0, partial: false, resetAfterClose: false };
  let consumerClose: number | null = null;
  let protocolClose: number | null = null;
  let fragmented = 0;
  let fragments: Buffer[] = [];
  let total = 0;
  let count = 0;
  let pos = 0;
  const fail = (code: number) => (protocolClose = code);
  for (;;) {
    if (stream.length - pos < 2) {
      out.partial = stream.length > pos;
      break;
    }
    const b0 = stream[pos];
    const b1 = stream[pos + 1];
    if (b0 & 0x30 || b0 & 0x40) {
      fail(1002);
      break;
    }
    const fin = (b0 & 0x80) !== 0;
    let opcode = b0 & 0x0f;
    let length = b1 & 0x7f;
    if (opcode === 0) {
      if (!fragmented) {
        fail(1002);
        break;
      }
      opcode = fragmented;
    } else if (opcode === 1 || opcode === 2) {
      if (fragmented) {
        fail(1002);
        break;
      }
    } else if (opcode >= 8 && opcode <= 10) {
      if (!fin || length > 125 || (opcode === 8 && length === 1)) {
        fail(1002);
        break;
      }
    } else {
      fail(1002);
      break;
    }
    if (!fin && !fragmented) fragmented = opcode;
    if (!(b1 & 0x80)) {
      fail(1002);
      break;
    }
    let cursor = pos + 2;
    if (length === 126) {
      if (stream.length - cursor < 2) {
        out.partial = true;
        break;
      }
      length = stream.readUInt16BE(cursor);
      cursor += 2;
    } else if (length === 127) {
      if (stream.length - cursor < 8) {
        out.partial = true;
        break;
      }
      const high = stream.readUInt32BE(cursor);
      if (high > 2 ** 21 - 1) {
        fail(1009);
        break;
      }
      length = high * 2 ** 32 + stream.readUInt32BE(cursor + 4);
      cursor += 8;
    }
    if (length && opcode < 8) {
      total += length;
      if (total > MAX_PAYLOAD) {
        fail(1009);
        break;
      }
    }
    if (stream.length - cursor < 4 + length) {
      out.partial = true;
      break;
    }
    const mask = stream.subarray(cursor, cursor + 4);
    const data = Buffer.from(stream.subarray(cursor + 4, cursor + 4 + length));
    for (let i = 0; i < data.length; i++) data[i] ^= mask[i & 3];
    pos = cursor + 4 + length;
    if (opcode === 8) {
      if (data.length === 0) fail(1005);
      else if (!validCloseCode(data.readUInt16BE(0))) fail(1002);
      else if (!validUtf8(data.subarray(2))) fail(1007);
      else fail(data.readUInt16BE(0));
      out.resetAfterClose = protocolClose !== 1002 && protocolClose !== 1007 && pos < stream.length;
      break;
    }
    if (opcode === 9) {
      if (consumerClose === null) out.pongs.push(data);
      continue;
    }
    if (opcode === 10) continue;
    if (++count > MAX_FRAGMENTS) {
      fail(1008);
      break;
    }
    if (data.length) fragments.push(data);
    if (!fin) continue;
    const message = Buffer.concat(fragments);
    const kind = opcode;
    fragments = [];
    fragmented = 0;
    total = 0;
    count = 0;
    if (kind === 2) {
      consumerClose ??= 1003;
      continue;
    }
    if (!validUtf8(message)) {
      fail(1007);
      break;
    }
    const answer = chatAnswer(message.toString());
    if (answer.close) consumerClose ??= answer.close;
    else if (consumerClose === null) {
      if (answer.echo !== undefined) out.echoes.push(answer.echo);
      else out.errors++;
    }
  }
  // A consumer-level close is asynchronous: a protocol error later in the same write may beat it.
  if (consumerClose !== null) out.closes = protocolClose === null ? [consumerClose] : [consumerClose, protocolClose];
  else if (protocolClose !== null) out.closes = [protocolClose];
  return out;
}
