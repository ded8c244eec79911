// channels_redis 4's list-layer wire format: keys, the message envelope and the Lua scripts.
import { randomBytes } from 'node:crypto';
import { Encoder } from '@msgpack/msgpack';
import type { Sealer } from '../fernet';
import { InvalidMessage, type LayerMessage, validateMessage } from '../layer';
import { MsgpackReader } from '../msgpack-reader';

/**
 * channels_redis stores the full process-local channel name(s) under this key, because every
 * `specific.<client>!*` channel of one process shares one Redis key.
 */
export const CHANNEL_FIELD = '__asgi_channel__';

/** channels_redis prefixes each sorted-set member with 12 random bytes so equal bodies stay distinct. */
const UNIQUE_PREFIX_BYTES = 12;

/** Channel keys are `prefix + name` with no separator (core.py: `self.prefix + channel_non_local_name`). */
export function channelKey(prefix: string, nonLocalName: string): string {
  return prefix + nonLocalName;
}

/** Group keys: `f"{prefix}:group:{group}"` (core.py `_group_key`). */
export function groupKey(prefix: string, group: string): string {
  return `${prefix}:group:${group}`;
}

/**
 * Builds members as channels_redis's `serialize`: 12 unique bytes + msgpack(message), or + a Fernet
 * token of those msgpack bytes with `symmetric_encryption_keys` (the `sealer`). Ours are 8 random
 * bytes per process plus a 32-bit counter: unique without a random draw per message.
 */
export class EnvelopeWriter {
  private readonly encoder = new Encoder({ ignoreUndefined: true });
  private readonly processBytes = randomBytes(8);
  private counter = 0;

  constructor(private readonly sealer?: Sealer) {}

  /** msgpack of the message alone; throws InvalidMessage when it cannot be encoded. */
  body(message: LayerMessage): Uint8Array {
    if (CHANNEL_FIELD in message) throw new InvalidMessage(`"${CHANNEL_FIELD}" is a reserved key`);
    try {
      return this.encoder.encode(message);
    } catch (error) {
      throw new InvalidMessage(`cannot be encoded (${(error as Error).message})`);
    }
  }

  /** The member for a shared (non-process-local) channel: the body as is, as channels_redis sends it. */
  plain(body: Uint8Array): Buffer {
    if (this.sealer) return this.sealed(body);
    const out = Buffer.allocUnsafe(UNIQUE_PREFIX_BYTES + body.length);
    this.unique(out);
    out.set(body, UNIQUE_PREFIX_BYTES);
    return out;
  }

  /**
   * The member for one Redis key: `body` with `__asgi_channel__` appended as the map's last entry
   * (where Python's dict copy puts it), spliced into the bytes so a group send encodes the message
   * once, not once per key.
   */
  member(body: Uint8Array, channels: string | string[]): Buffer {
    const tail = this.encoder.encode({ [CHANNEL_FIELD]: channels }).subarray(1); // drop its fixmap header
    const [count, headerLength] = mapHeader(body);
    const header = encodeMapHeader(count + 1);
    const out = Buffer.allocUnsafe(UNIQUE_PREFIX_BYTES + header.length + body.length - headerLength + tail.length);
    this.unique(out);
    let at = UNIQUE_PREFIX_BYTES;
    out.set(header, at);
    at += header.length;
    out.set(body.subarray(headerLength), at);
    out.set(tail, at + body.length - headerLength);
    // Sealed after the splice: channels_redis encrypts the message with `__asgi_channel__` in it.
    return this.sealer ? this.sealed(out.subarray(UNIQUE_PREFIX_BYTES)) : out;
  }

  /** Unique prefix + token: each key's member is sealed on its own (fresh IV), as channels_redis does. */
  private sealed(payload: Uint8Array): Buffer {
    const token = this.sealer!.seal(payload);
    const out = Buffer.allocUnsafe(UNIQUE_PREFIX_BYTES + token.length);
    this.unique(out);
    token.copy(out, UNIQUE_PREFIX_BYTES);
    return out;
  }

  private unique(out: Buffer): void {
    this.processBytes.copy(out, 0);
    out.writeUInt32BE(this.counter, 8);
    this.counter = (this.counter + 1) >>> 0;
  }
}

/** A decoded member: the message without `__asgi_channel__`, and the channel(s) it names, if any. */
export interface Envelope {
  message: LayerMessage;
  channels: string | string[] | null;
}

export class EnvelopeReader {
  // The library's results, faster (see MsgpackReader): every member popped from Redis is decoded here.
  private readonly decoder = new MsgpackReader();

  /**
   * `sealer` opens members sealed with `symmetric_encryption_keys`; `ttl` (seconds) refuses older
   * tokens, as channels_redis's `decrypt(message, expiry + 10)`.
   */
  constructor(
    private readonly sealer?: Sealer,
    private readonly ttl?: number,
  ) {}

  /** A body from `EnvelopeWriter.body` back to a fresh message (a send within this process). */
  body(bytes: Uint8Array): LayerMessage {
    return this.decoder.decode(bytes) as LayerMessage;
  }

  /** Throws on bytes that are not a channels_redis member (the caller logs and drops them). */
  read(member: Uint8Array): Envelope {
    const payload = member.subarray(UNIQUE_PREFIX_BYTES);
    const value = this.decoder.decode(this.sealer ? this.sealer.open(payload, this.ttl) : payload) as Record<string, unknown>;
    validateMessage(value);
    const channels = value[CHANNEL_FIELD];
    if (channels === undefined) return { message: value, channels: null };
    delete value[CHANNEL_FIELD];
    if (typeof channels === 'string' || (Array.isArray(channels) && channels.every((c) => typeof c === 'string'))) {
      return { message: value, channels: channels as string | string[] };
    }
    throw new InvalidMessage(`"${CHANNEL_FIELD}" is neither a channel name nor a list of them`);
  }
}

function mapHeader(bytes: Uint8Array): [count: number, headerLength: number] {
  const first = bytes[0];
  if (first >= 0x80 && first <= 0x8f) return [first & 0x0f, 1];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (first === 0xde) return [view.getUint16(1), 3];
  if (first === 0xdf) return [view.getUint32(1), 5];
  throw new InvalidMessage('not encoded as a msgpack map');
}

function encodeMapHeader(count: number): Uint8Array {
  if (count <= 0x0f) return Uint8Array.of(0x80 | count);
  if (count <= 0xffff) return Uint8Array.of(0xde, count >> 8, count & 0xff);
  const out = new Uint8Array(5);
  out[0] = 0xdf;
  new DataView(out.buffer).setUint32(1, count);
  return out;
}

/**
 * Point-to-point send, atomic (channels_redis sends ZREMRANGEBYSCORE, ZCOUNT, ZADD, EXPIRE as four
 * round trips; one script is one). KEYS[1] channel key; ARGV: member, score, expired-before score,
 * capacity, expire seconds. Returns 0 when the channel is full.
 */
export const SEND_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[3])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
`;

/** Group members after dropping expired memberships. KEYS[1] group key; ARGV[1] expired-before score. */
export const GROUP_MEMBERS_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

/**
 * channels_redis's group_send script, with its expired-message pipeline folded in: one EVAL per
 * host per group send. KEYS: channel keys; ARGV: one member per key, one capacity per key, then
 * score, expire seconds, expired-before score. Returns how many keys were over capacity.
 */
export const GROUP_SEND_SCRIPT = `
local n = #KEYS
local now = ARGV[2 * n + 1]
local expiry = ARGV[2 * n + 2]
local expired = ARGV[2 * n + 3]
local over = 0
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, expired)
  if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
    redis.call('ZADD', KEYS[i], now, ARGV[i])
    redis.call('EXPIRE', KEYS[i], expiry)
  else
    over = over + 1
  end
end
return over
`;

/** channels_redis's flush: delete every key under the prefix, 5000 at a time (unpack's limit). */
export const FLUSH_SCRIPT = `
local keys = redis.call('keys', ARGV[1])
for i = 1, #keys, 5000 do
  redis.call('del', unpack(keys, i, math.min(i + 4999, #keys)))
end
return #keys
`;
